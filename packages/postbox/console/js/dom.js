/** Builds an element: h('button', { class: 'x', 'data-testid': 'y', onclick }, 'text', child). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttributes(el, attrs);
  append(el, children);
  return el;
}

const svgNamespace = 'http://www.w3.org/2000/svg';

/** Like h, for SVG elements. */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(svgNamespace, tag);
  setAttributes(el, attrs);
  append(el, children);
  return el;
}

function setAttributes(el, attrs) {
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class' && el instanceof HTMLElement) el.className = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function $(selector, root = document) {
  const el = root.querySelector(selector);
  if (!el) throw new Error(`Missing element ${selector}`);
  return el;
}

export function formatTime(value) {
  if (!value) return '—';
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const sameDay = date.toDateString() === new Date().toDateString();
  const time = date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (sameDay) return time;
  return `${date.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' })} ${time}`;
}

export function isoTitle(value) {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString();
}

export function formatSeconds(value) {
  const seconds = Number(value);
  if (value === null || value === undefined || !Number.isFinite(seconds)) return '—';
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** A rate per second: `—` when unknown, one decimal below 10. */
export function formatRate(value) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return '—';
  const rate = Number(value);
  return `${rate < 10 ? rate.toFixed(1) : Math.round(rate).toLocaleString()}/s`;
}

export function truncate(text, max) {
  const value = String(text ?? '');
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

export function statusChip(status) {
  const value = String(status ?? 'unknown');
  return h('span', { class: `chip status-chip status-${value.replace(/[^a-z-]/gi, '')}`, 'data-testid': 'status-chip' }, value);
}

/** `lastErrorAt` → `Last error at`. */
export function labelOf(key) {
  return key.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/^./, (c) => c.toUpperCase());
}

export function emptyRow(columns, text, testid) {
  return h('tr', {}, h('td', { colspan: columns, class: 'empty', 'data-testid': testid }, text));
}

/** A button that asks for a second click before it runs action; the first click arms it for a few seconds. */
export function confirmButton(label, confirmLabel, attrs, action) {
  let timer;
  const button = h('button', { type: 'button', class: 'button danger small', ...attrs }, label);
  button.addEventListener('click', async () => {
    if (button.dataset.armed !== 'true') {
      button.dataset.armed = 'true';
      button.textContent = confirmLabel;
      timer = setTimeout(() => {
        button.dataset.armed = 'false';
        button.textContent = label;
      }, 4000);
      return;
    }
    clearTimeout(timer);
    button.dataset.armed = 'false';
    button.textContent = label;
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/**
 * A table of the console's kind in its scrolling wrapper: `columns` are header labels, or
 * [label, class] pairs ('num', 'actions-col'); `body` is the tbody the panel fills.
 */
export function dataTable(attrs, columns, body) {
  const headers = columns.map((column) => (Array.isArray(column) ? h('th', { class: column[1] }, column[0]) : h('th', {}, column)));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'data', ...attrs }, h('thead', {}, h('tr', {}, ...headers)), body));
}
