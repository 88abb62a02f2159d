import { api } from '../api.js';
import { h } from '../dom.js';
import { showError, showInfo } from '../messages.js';

const enc = encodeURIComponent;

const targets = [
  ['earliest', 'Earliest: every message still in the log'],
  ['latest', 'Latest: only what commits from now on'],
  ['time', 'A time: messages committed from then on'],
  ['message', 'A message id: that message first'],
];

/**
 * Moves a group to read from another place in the log. A dry run comes first and shows, per
 * partition, what would be read again or skipped; only then can the reset itself be confirmed,
 * for exactly the place the dry run looked at.
 */
export function openResetDialog(context, group) {
  const kind = h(
    'select',
    { 'data-testid': 'reset-target', 'aria-label': 'Reset to' },
    targets.map(([value, label]) => h('option', { value }, label)),
  );
  const time = h('input', { type: 'datetime-local', step: '1', 'data-testid': 'reset-time', 'aria-label': 'Time', hidden: true });
  const messageId = h('input', {
    type: 'text',
    placeholder: 'message id (a UUID)',
    spellcheck: 'false',
    'data-testid': 'reset-message-id',
    'aria-label': 'Message id',
    hidden: true,
  });
  const report = h(
    'div',
    { class: 'reset-report', 'data-testid': 'reset-report' },
    h('p', { class: 'muted' }, 'Run a dry run to see what the reset would do.'),
  );
  const dryRun = h('button', { type: 'button', class: 'button', 'data-testid': 'reset-dry-run' }, 'Dry run');
  const confirm = h('button', { type: 'button', class: 'button danger', 'data-testid': 'reset-confirm', disabled: true }, 'Reset');
  const close = h('button', { type: 'button', class: 'button ghost', 'data-testid': 'reset-close' }, 'Close');
  const dialog = h(
    'dialog',
    { class: 'dialog', 'data-testid': 'reset-dialog', 'data-group': group.group },
    h('h2', {}, 'Reset ', h('span', { class: 'mono' }, group.group)),
    h(
      'p',
      { class: 'muted small-text' },
      `Moves every partition of the group (topics ${group.topics.join(', ')}) to read from one place. It is refused while a process runs the group. Dead letters stay as they are.`,
    ),
    h('div', { class: 'dialog-fields' }, kind, time, messageId),
    report,
    h('div', { class: 'dialog-actions' }, dryRun, confirm, close),
  );
  let planned;

  function request() {
    if (kind.value === 'earliest' || kind.value === 'latest') return kind.value;
    if (kind.value === 'time') {
      const date = new Date(time.value);
      if (!time.value || Number.isNaN(date.getTime())) throw new Error('Choose a date and time.');
      return { time: date.toISOString() };
    }
    if (!messageId.value.trim()) throw new Error('Enter a message id.');
    return { messageId: messageId.value.trim() };
  }

  function changed() {
    time.hidden = kind.value !== 'time';
    messageId.hidden = kind.value !== 'message';
    if (planned !== undefined) {
      planned = undefined;
      confirm.disabled = true;
      report.replaceChildren(h('p', { class: 'muted' }, 'The place changed: run the dry run again.'));
    }
  }

  async function run(dry) {
    let to;
    try {
      to = request();
    } catch (error) {
      report.replaceChildren(h('p', { class: 'error-text', 'data-testid': 'reset-error' }, error.message));
      return;
    }
    dryRun.disabled = true;
    confirm.disabled = true;
    try {
      const result = await api('POST', `api/groups/${enc(group.group)}/reset`, { to, dryRun: dry });
      if (dry) {
        planned = JSON.stringify(to);
        report.replaceChildren(...renderReport(result).filter(Boolean));
        confirm.disabled = result.heldBy.length > 0;
        confirm.textContent = `Reset ${result.partitions.length} partition${result.partitions.length === 1 ? '' : 's'}`;
      } else {
        showInfo(`Group ${group.group} reset: ${result.readAgain} messages will be read again, ${result.skipped} skipped.`);
        dialog.close();
        await context.refreshAll();
      }
    } catch (error) {
      report.replaceChildren(h('p', { class: 'error-text', 'data-testid': 'reset-error' }, `${error.message} (${error.code})`));
      showError(error, dry ? 'Dry run of the reset' : 'Resetting the group', 'group-reset');
      if (!dry && planned !== undefined) confirm.disabled = false;
    } finally {
      dryRun.disabled = false;
    }
  }

  kind.addEventListener('change', changed);
  time.addEventListener('input', changed);
  messageId.addEventListener('input', changed);
  dryRun.addEventListener('click', () => run(true));
  confirm.addEventListener('click', () => {
    if (planned === JSON.stringify(request())) run(false);
  });
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

function renderReport(result) {
  return [
    h(
      'p',
      { class: 'reset-summary' },
      'Would read again ',
      h('strong', { 'data-testid': 'reset-read-again' }, String(result.readAgain)),
      ' and skip ',
      h('strong', { 'data-testid': 'reset-skipped' }, String(result.skipped)),
      ` committed messages. ${result.openDeadLetters} open dead letter${result.openDeadLetters === 1 ? '' : 's'} stay as they are.`,
    ),
    result.heldBy.length > 0
      ? h(
          'p',
          { class: 'warn-text', 'data-testid': 'reset-held-by' },
          `Running now: ${result.heldBy.join(', ')}. Stop them first; the reset is refused while a process runs the group.`,
        )
      : null,
    h(
      'table',
      { class: 'data compact' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { class: 'num' }, '#'),
          h('th', {}, 'From'),
          h('th', {}, 'To'),
          h('th', { class: 'num' }, 'Read again'),
          h('th', { class: 'num' }, 'Skipped'),
        ),
      ),
      h(
        'tbody',
        {},
        result.partitions.map((partition) =>
          h(
            'tr',
            { 'data-testid': 'reset-partition-row', 'data-partition': partition.partition },
            h('td', { class: 'num' }, String(partition.partition)),
            h('td', { class: 'mono small-text' }, `${partition.from.transactionId} / ${partition.from.globalPosition}`),
            h('td', { class: 'mono small-text' }, `${partition.to.transactionId} / ${partition.to.globalPosition}`),
            h('td', { class: 'num' }, String(partition.readAgain)),
            h('td', { class: 'num' }, String(partition.skipped)),
          ),
        ),
      ),
    ),
  ];
}
