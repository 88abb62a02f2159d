import { api, query } from '../api.js';
import { confirmButton, dataTable, emptyRow, formatSeconds, formatTime, h, isoTitle, truncate } from '../dom.js';
import { clearMessage, showError, showInfo } from '../messages.js';

const enc = encodeURIComponent;
const columns = 9;

/** How each parked state reads on the page, and its chip's colour. */
const states = {
  waiting: { label: 'waiting', tone: 'pending' },
  follower: { label: 'behind', tone: 'idle' },
  dead_lettered: { label: 'held by dead letter', tone: 'faulted' },
};

function stateChip(parked) {
  const state = states[parked.status] ?? { label: String(parked.status), tone: 'idle' };
  return h('span', { class: `chip status-chip status-${state.tone}`, 'data-testid': 'parked-state' }, state.label);
}

/** When a waiting message is attempted next; what a follower or a held message waits for. */
function nextAttempt(parked) {
  if (parked.status === 'dead_lettered') return parked.deadLetterId ? `until dead letter ${parked.deadLetterId} is handled` : '—';
  if (!parked.nextAttemptAt) return 'after the messages before it';
  return formatTime(parked.nextAttemptAt);
}

/**
 * Parked messages, each key's in log order: the first of a key is attempted next and holds the
 * rest back. Release has a key's first message attempted now; discard drops one message.
 */
export const parkedPanel = {
  id: 'parked',
  title: 'Parked messages',
  nav: 'Parked',
  create(context) {
    const group = h('select', { 'data-testid': 'parked-filter-group', 'aria-label': 'Group' }, h('option', { value: '' }, 'every group'));
    const key = h('input', {
      type: 'search',
      placeholder: 'any key',
      spellcheck: 'false',
      'data-testid': 'parked-filter-key',
      'aria-label': 'Key',
    });
    const count = h('span', { class: 'muted small-text', 'data-testid': 'parked-count' });
    const totals = h('div', { class: 'parked-totals', 'data-testid': 'parked-totals' });
    const body = h('tbody', { 'data-testid': 'parked-list' });
    const form = h(
      'form',
      { class: 'filters', 'data-testid': 'parked-filters' },
      h('label', { class: 'inline-field' }, h('span', {}, 'Group'), group),
      h('label', { class: 'inline-field' }, h('span', {}, 'Key'), key),
      count,
    );
    const element = h(
      'div',
      {},
      form,
      totals,
      dataTable(
        { 'data-testid': 'parked' },
        ['Id', 'Group', 'Key', 'Topic', ['Attempts', 'num'], 'State', 'Next attempt', 'Last error', ['Actions', 'actions-col']],
        body,
      ),
    );
    let signature = '';

    async function act(parked, action) {
      try {
        const answer = await api('POST', `api/parked/${enc(parked.id)}/${action}`, {});
        const message = answer.released ?? answer.discarded;
        const what = message.key === null ? `message ${message.messageId}` : `key ${JSON.stringify(message.key)}`;
        clearMessage('parked-action');
        showInfo(
          action === 'discard'
            ? `Parked message ${message.id} of group ${message.group} discarded`
            : message.status === 'dead_lettered'
              ? `Released ${what} of group ${message.group}: no longer held by its dead letter`
              : `Released ${what} of group ${message.group}: parked message ${message.id} is attempted now`,
        );
      } catch (error) {
        showError(error, action === 'release' ? 'Releasing the parked key' : 'Discarding the parked message', 'parked-action');
      } finally {
        await context.refreshAll();
      }
    }

    function row(parked) {
      const readOnly = context.info.readOnly;
      return h(
        'tr',
        {
          'data-testid': 'parked-row',
          'data-id': parked.id,
          'data-group': parked.group,
          'data-key': parked.key ?? '',
          'data-status': parked.status,
          'data-message-id': parked.messageId,
        },
        h('td', { class: 'mono' }, parked.id),
        h(
          'td',
          { class: 'mono' },
          parked.group,
          parked.handler && parked.handler !== parked.group ? h('div', { class: 'muted small-text' }, parked.handler) : null,
        ),
        h('td', { class: 'mono', 'data-testid': 'parked-key' }, parked.key ?? '—'),
        h('td', { class: 'mono' }, parked.topic, h('div', { class: 'muted small-text' }, parked.type)),
        h('td', { class: 'num', 'data-testid': 'parked-attempts' }, String(parked.attempts)),
        h('td', {}, stateChip(parked)),
        h('td', { title: isoTitle(parked.nextAttemptAt) }, nextAttempt(parked)),
        parked.errorMessage
          ? h('td', { class: 'error-text', title: parked.errorMessage, 'data-testid': 'parked-error' }, truncate(parked.errorMessage, 160))
          : h('td', { class: 'muted' }, '—'),
        h(
          'td',
          { class: 'actions-col' },
          h(
            'div',
            { class: 'row-actions' },
            h(
              'button',
              {
                type: 'button',
                class: 'button small',
                title: "Attempt this key's first parked message now; the rest follow in order",
                'data-testid': 'parked-release',
                disabled: readOnly,
                onclick: async (event) => {
                  const button = event.currentTarget;
                  button.disabled = true;
                  await act(parked, 'release');
                  button.disabled = false;
                },
              },
              'Release',
            ),
            confirmButton('Discard', 'Confirm discard', { 'data-testid': 'parked-discard', disabled: readOnly }, () =>
              act(parked, 'discard'),
            ),
          ),
        ),
      );
    }

    function renderTotals(counts) {
      totals.replaceChildren(
        ...counts.map((entry) =>
          h(
            'span',
            { class: 'parked-total', 'data-testid': 'parked-group-total', 'data-group': entry.group, 'data-total': entry.total },
            h('span', { class: 'mono' }, entry.group),
            `: ${entry.total} parked (${entry.waiting} waiting, ${entry.followers} behind, ${entry.deadLettered} held), oldest ${formatSeconds(entry.oldestSeconds)}`,
          ),
        ),
      );
    }

    function renderGroups(counts) {
      const names = counts.map((entry) => entry.group);
      const chosen = group.value;
      if (chosen && !names.includes(chosen)) names.push(chosen);
      const current = [...group.options].slice(1).map((option) => option.value);
      if (current.join('\n') === names.join('\n')) return;
      group.replaceChildren(
        h('option', { value: '' }, 'every group'),
        names.map((name) => h('option', { value: name, selected: name === chosen }, name)),
      );
    }

    async function refresh() {
      const [parked, counts] = await Promise.all([
        api('GET', `api/parked${query({ group: group.value, key: key.value })}`),
        api('GET', 'api/parked/counts'),
      ]);
      renderGroups(counts);
      renderTotals(counts);
      const total = counts.reduce((sum, entry) => sum + entry.total, 0);
      context.setParkedBadge(total);
      const limit = context.info.parkedLimit;
      count.textContent = `${parked.length} shown${parked.length >= limit ? ` (the first ${limit})` : ''}; ${total} parked in all`;
      const next = JSON.stringify(parked);
      // A button waiting for its confirming click keeps its row until it is clicked or times out.
      if (next === signature || body.querySelector('[data-armed="true"]')) return;
      signature = next;
      body.replaceChildren(
        ...(parked.length === 0
          ? [emptyRow(columns, total === 0 ? 'Nothing parked. No key is waiting.' : 'None with this group and key.', 'parked-empty')]
          : parked.map(row)),
      );
    }

    const reload = () => refresh().catch((error) => showError(error, 'Loading parked messages', 'panel-parked'));
    group.addEventListener('change', reload);
    key.addEventListener('change', reload);
    form.addEventListener('submit', (event) => event.preventDefault());
    return { element, refresh };
  },
};
