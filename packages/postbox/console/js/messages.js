import { h } from './dom.js';

let area;
let onTokenNeeded = () => {};

/** Messages go to element; tokenNeeded(error) runs on a 401, when a change lacked the console token or had a wrong one. */
export function initMessages(element, tokenNeeded = () => {}) {
  area = element;
  onTokenNeeded = tokenNeeded;
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
}

export function showInfo(text) {
  show('info', text);
}

/** Shows an API or other error; a 401 also opens the token form. */
export function showError(error, context, key = context) {
  const prefix = context ? `${context}: ` : '';
  const code = error?.code ? ` (${error.code})` : '';
  show('error', `${prefix}${error?.message ?? String(error)}${code}`, { key });
  if (error?.needsToken) onTokenNeeded(error);
}

export function clearMessage(key) {
  area?.querySelector(`[data-key="${CSS.escape(key)}"]`)?.remove();
}
