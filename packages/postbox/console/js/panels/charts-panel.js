import { api } from '../api.js';
import { dataTable, emptyRow, formatRate, h } from '../dom.js';
import { sparkline } from '../sparkline.js';

/** Lag and throughput over the last minutes, from the server's sampler: the log's append rate, and each group's lag and handled rate. */
export const chartsPanel = {
  id: 'charts',
  title: 'Lag and throughput',
  nav: 'Charts',
  create() {
    const note = h('span', { class: 'muted small-text', 'data-testid': 'charts-window' });
    const log = h('div', { class: 'chart-log', 'data-testid': 'chart-log' });
    const body = h('tbody', { 'data-testid': 'chart-groups' });
    const element = h(
      'div',
      {},
      h('div', { class: 'panel-note' }, note),
      log,
      dataTable({}, ['Group', 'Lag (messages)', ['Now', 'num'], 'Handled per second', ['Now', 'num']], body),
    );

    async function refresh() {
      const data = await api('GET', 'api/samples');
      if (!data.enabled) {
        note.textContent = 'The sampler is off for this console.';
        log.replaceChildren();
        body.replaceChildren(emptyRow(5, 'No samples.', 'charts-empty'));
        return;
      }
      const samples = data.samples ?? [];
      const minutes = Math.round(data.windowMs / 60_000);
      note.textContent = `Last ${minutes} min, one sample every ${Math.round(data.intervalMs / 100) / 10} s (${samples.length} so far)${data.lastError ? ` — the last sample failed: ${data.lastError}` : ''}.`;
      const appended = samples.map((sample) => sample.appendedPerSecond);
      log.replaceChildren(
        h('span', { class: 'chart-label' }, 'Log: messages readable per second'),
        sparkline(appended, { label: 'messages readable per second', width: 360, testid: 'sparkline-log' }),
        h('span', { class: 'num chart-now', 'data-testid': 'chart-log-now' }, formatRate(appended.at(-1))),
      );
      const latest = samples.at(-1)?.groups ?? [];
      if (latest.length === 0) {
        body.replaceChildren(emptyRow(5, 'No consumer groups yet.', 'charts-empty'));
        return;
      }
      body.replaceChildren(
        ...latest.map((group) => {
          const series = (field) => samples.map((sample) => sample.groups.find((entry) => entry.group === group.group)?.[field] ?? null);
          return h(
            'tr',
            { 'data-testid': 'chart-group-row', 'data-group': group.group },
            h('td', { class: 'mono' }, group.group),
            h('td', {}, sparkline(series('lagMessages'), { label: `${group.group} lag`, testid: 'sparkline-lag' })),
            h('td', { class: 'num' }, String(group.lagMessages)),
            h('td', {}, sparkline(series('handledPerSecond'), { label: `${group.group} handled per second`, testid: 'sparkline-handled' })),
            h('td', { class: 'num' }, formatRate(group.handledPerSecond)),
          );
        }),
      );
    }

    return { element, refresh };
  },
};
