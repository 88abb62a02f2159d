import { svg } from './dom.js';

const finite = (value) => value !== null && value !== undefined && Number.isFinite(Number(value));

/**
 * A small SVG line of values, oldest first, scaled from 0 to its largest value; a null leaves a gap
 * (no sample, or no rate yet). The element says its latest and largest value for tests and readers.
 */
export function sparkline(values, { label, width = 180, height = 34, testid = 'sparkline' } = {}) {
  const known = values.filter(finite).map(Number);
  const max = Math.max(0, ...known);
  const scale = max > 0 ? max : 1;
  const step = values.length > 1 ? (width - 2) / (values.length - 1) : 0;
  const segments = [];
  let current = [];
  values.forEach((value, index) => {
    if (!finite(value)) {
      if (current.length > 0) segments.push(current);
      current = [];
      return;
    }
    const x = 1 + index * step;
    const y = height - 1 - (Number(value) / scale) * (height - 2);
    current.push(`${x.toFixed(1)},${y.toFixed(1)}`);
  });
  if (current.length > 0) segments.push(current);
  const last = known.at(-1);
  const description = `${label}: ${known.length === 0 ? 'no samples yet' : `latest ${round(last)}, highest ${round(max)}`}`;
  return svg(
    'svg',
    {
      class: 'sparkline',
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'aria-label': description,
      'data-testid': testid,
      'data-points': known.length,
      'data-last': last === undefined ? '' : String(last),
      'data-max': String(max),
    },
    svg('title', {}, description),
    svg('line', { class: 'sparkline-base', x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5 }),
    segments.map((points) =>
      points.length === 1
        ? svg('circle', { class: 'sparkline-dot', cx: points[0].split(',')[0], cy: points[0].split(',')[1], r: 1.5 })
        : svg('polyline', { class: 'sparkline-line', points: points.join(' ') }),
    ),
  );
}

function round(value) {
  return Math.abs(value) >= 10 ? Math.round(value) : Math.round(value * 10) / 10;
}
