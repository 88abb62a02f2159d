import { api } from '../api.js';
import { confirmButton, formatTime, h, isoTitle, statusChip } from '../dom.js';
import { showError } from '../messages.js';
import { actOnDeadLetter } from './dead-letter-actions.js';

const enc = encodeURIComponent;

function field(label, value, testid) {
  return h('div', { class: 'stat' }, h('dt', {}, label), h('dd', { 'data-testid': testid }, value ?? '—'));
}

function block(title, text, testid) {
  return h('section', { class: 'dialog-block' }, h('h3', {}, title), h('pre', { class: 'code', 'data-testid': testid }, text));
}

/** One dead letter whole: the message (payload, headers, raw bytes), the error and its stack; retry or discard it. */
export async function openDeadLetterDialog(context, id) {
  let letter;
  try {
    letter = await api('GET', `api/dead-letters/${enc(id)}`);
  } catch (error) {
    showError(error, `Loading dead letter ${id}`, 'dead-letter-view');
    return;
  }
  const actionable = letter.status === 'pending' && !context.info.readOnly;
  const close = h('button', { type: 'button', class: 'button ghost', 'data-testid': 'dead-letter-dialog-close' }, 'Close');
  const dialog = h(
    'dialog',
    { class: 'dialog wide', 'data-testid': 'dead-letter-dialog', 'data-id': letter.id, 'data-status': letter.status },
    h('h2', {}, `Dead letter ${letter.id} `, statusChip(letter.status)),
    h(
      'dl',
      { class: 'stats' },
      field('Group', letter.group, 'dead-letter-group'),
      field('Handler', letter.handler),
      field('Topic', letter.topic),
      field('Type', letter.type),
      field('Key', letter.key),
      field('Message id', letter.messageId, 'dead-letter-message-id'),
      field('Attempts', String(letter.attempts)),
      field('First failure', h('span', { title: isoTitle(letter.firstFailedAt) }, formatTime(letter.firstFailedAt))),
      field('Last failure', h('span', { title: isoTitle(letter.lastFailedAt) }, formatTime(letter.lastFailedAt))),
      field('Error code', letter.errorCode, 'dead-letter-error-code'),
    ),
    h('p', { class: 'error-text', 'data-testid': 'dead-letter-error-message' }, letter.errorMessage),
    block(
      'Payload',
      letter.payload === null || letter.payload === undefined ? '(none)' : JSON.stringify(letter.payload, null, 2),
      'dead-letter-payload',
    ),
    letter.rawPayload ? block('Raw payload', letter.rawPayload, 'dead-letter-raw-payload') : null,
    block('Headers', JSON.stringify(letter.headers ?? {}, null, 2), 'dead-letter-headers'),
    block('Stack', letter.errorStack ?? '(none)', 'dead-letter-stack'),
    h(
      'div',
      { class: 'dialog-actions' },
      h(
        'button',
        {
          type: 'button',
          class: 'button primary',
          'data-testid': 'dead-letter-dialog-retry',
          disabled: !actionable,
          onclick: async () => {
            if (await actOnDeadLetter(context, letter.id, 'retry')) dialog.close();
          },
        },
        'Retry',
      ),
      confirmButton('Discard', 'Confirm discard', { 'data-testid': 'dead-letter-dialog-discard', disabled: !actionable }, async () => {
        if (await actOnDeadLetter(context, letter.id, 'discard')) dialog.close();
      }),
      close,
    ),
  );
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}
