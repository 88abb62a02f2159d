import { h } from './dom.js';

let area;

export function initMessages(element) {
  area = element;
}

function show(kind, text, { sticky = kind === 'error', key } = {}) {
  if (!area) return;
  if (key) area.querySelector(`[data-key="${CSS.escape(key)}"]`)?.remove();
  if (kind === 'info') for (const old of area.querySelectorAll('.message.info')) old.remove();
  const close = h('button', { type: 'button', class: 'message-close', 'aria-label': 'Dismiss', 'data-testid': 'message-dismiss' }, '×');
  const item = h(
    'div',
    { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-testid': 'message', 'data-kind': kind, 'data-key': key },
    h('span', { class: 'message-text', 'data-testid': 'message-text' }, text),
    close,
  );
  close.addEventListener('click', () => item.remove());
  area.append(item);
  const errors = area.querySelectorAll('.message.error');
  for (let i = 0; i < errors.length - 3; i += 1) errors[i].remove();
  if (!sticky) setTimeout(() => item.remove(), 4000);
  return item;
}

export function showInfo(text) {
  show('info', text);
}

/** Shows an API or other error, with its code. */
export function showError(error, context, key = context) {
  const prefix = context ? `${context}: ` : '';
  const code = error?.code ? ` (${error.code})` : '';
  show('error', `${prefix}${error?.message ?? String(error)}${code}`, { key });
}

export function clearMessage(key) {
  area?.querySelector(`[data-key="${CSS.escape(key)}"]`)?.remove();
}
