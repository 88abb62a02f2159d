import { api, query } from '../api.js';
import { confirmButton, dataTable, emptyRow, formatTime, h, isoTitle, statusChip, truncate } from '../dom.js';
import { showError } from '../messages.js';
import { actOnDeadLetter } from './dead-letter-actions.js';
import { openDeadLetterDialog } from './dead-letter-dialog.js';

const columns = 9;

/** Dead letters, filtered by group, topic and status: open ones by default, oldest first. */
export const deadLettersPanel = {
  id: 'dead-letters',
  title: 'Dead letters',
  nav: 'Dead letters',
  create(context) {
    const group = h(
      'select',
      { 'data-testid': 'dead-letter-filter-group', 'aria-label': 'Group' },
      h('option', { value: '' }, 'every group'),
    );
    const topic = h('input', {
      type: 'search',
      placeholder: 'any topic',
      spellcheck: 'false',
      'data-testid': 'dead-letter-filter-topic',
      'aria-label': 'Topic',
    });
    const status = h(
      'select',
      { 'data-testid': 'dead-letter-filter-status', 'aria-label': 'Status' },
      ['open', 'pending', 'retrying', 'retried', 'discarded'].map((value) => h('option', { value }, value)),
    );
    const count = h('span', { class: 'muted small-text', 'data-testid': 'dead-letter-count' });
    const body = h('tbody', { id: 'dead-letter-body', 'data-testid': 'dead-letter-list' });
    const form = h(
      'form',
      { class: 'filters', 'data-testid': 'dead-letter-filters' },
      h('label', { class: 'inline-field' }, h('span', {}, 'Group'), group),
      h('label', { class: 'inline-field' }, h('span', {}, 'Topic'), topic),
      h('label', { class: 'inline-field' }, h('span', {}, 'Status'), status),
      count,
    );
    const element = h(
      'div',
      {},
      form,
      dataTable(
        { 'data-testid': 'dead-letters' },
        ['Id', 'Group', 'Topic', 'Type', 'Error', ['Attempts', 'num'], 'Last failure', 'Status', ['Actions', 'actions-col']],
        body,
      ),
    );
    let signature = '';

    async function refresh() {
      const [letters, counts] = await Promise.all([
        api('GET', `api/dead-letters${query({ group: group.value, topic: topic.value.trim(), status: status.value })}`),
        api('GET', 'api/dead-letters/counts'),
      ]);
      renderGroups(counts);
      const open = counts.reduce((sum, entry) => sum + entry.count, 0);
      context.setBadge(open);
      const limit = context.info.deadLetterLimit;
      count.textContent = `${letters.length} shown${letters.length >= limit ? ` (the oldest ${limit})` : ''}; ${open} open in all`;
      const next = JSON.stringify(letters);
      // A button waiting for its confirming click keeps its row until it is clicked or times out.
      if (next === signature || body.querySelector('[data-armed="true"]')) return;
      signature = next;
      body.replaceChildren(
        ...(letters.length === 0
          ? [
              emptyRow(
                columns,
                status.value === 'open' ? 'No dead letters. Every message was handled.' : 'None with this status.',
                'dead-letters-empty',
              ),
            ]
          : letters.map(row)),
      );
    }

    function renderGroups(counts) {
      const names = [...new Set(counts.map((entry) => entry.group))].sort();
      const chosen = group.value;
      if (chosen && !names.includes(chosen)) names.push(chosen);
      const current = [...group.options].slice(1).map((option) => option.value);
      if (current.join('\n') === names.join('\n')) return;
      group.replaceChildren(
        h('option', { value: '' }, 'every group'),
        names.map((name) => h('option', { value: name, selected: name === chosen }, name)),
      );
    }

    function row(letter) {
      const id = String(letter.id);
      const actionable = letter.status === 'pending';
      const readOnly = context.info.readOnly;
      return h(
        'tr',
        {
          'data-testid': 'dead-letter-row',
          'data-id': id,
          'data-status': letter.status,
          'data-group': letter.group,
          'data-attempts': letter.attempts,
          'data-last-failed-at': letter.lastFailedAt,
        },
        h('td', { class: 'mono' }, id),
        h(
          'td',
          { class: 'mono' },
          letter.group,
          letter.handler && letter.handler !== letter.group ? h('div', { class: 'muted small-text' }, letter.handler) : null,
        ),
        h('td', { class: 'mono' }, letter.topic),
        h('td', { class: 'mono' }, letter.type ?? '—'),
        h(
          'td',
          { class: 'error-text', title: letter.errorMessage, 'data-testid': 'dead-letter-error' },
          truncate(letter.errorMessage, 160),
        ),
        h('td', { class: 'num', 'data-testid': 'dead-letter-attempts' }, String(letter.attempts ?? '—')),
        h('td', { title: isoTitle(letter.lastFailedAt) }, formatTime(letter.lastFailedAt)),
        h('td', {}, statusChip(letter.status)),
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
                'data-testid': 'dead-letter-view',
                onclick: () => openDeadLetterDialog(context, id),
              },
              'View',
            ),
            h(
              'button',
              {
                type: 'button',
                class: 'button small',
                'data-testid': 'dead-letter-retry',
                disabled: !actionable || readOnly,
                onclick: async (event) => {
                  const button = event.currentTarget;
                  button.disabled = true;
                  await actOnDeadLetter(context, id, 'retry');
                  button.disabled = false;
                },
              },
              'Retry',
            ),
            actionable || letter.status === 'retrying'
              ? confirmButton('Discard', 'Confirm discard', { 'data-testid': 'dead-letter-discard', disabled: readOnly }, () =>
                  actOnDeadLetter(context, id, 'discard'),
                )
              : null,
          ),
        ),
      );
    }

    for (const input of [group, status])
      input.addEventListener('change', () => refresh().catch((error) => showError(error, 'Loading dead letters', 'panel-dead-letters')));
    topic.addEventListener('change', () => refresh().catch((error) => showError(error, 'Loading dead letters', 'panel-dead-letters')));
    form.addEventListener('submit', (event) => event.preventDefault());
    return { element, refresh };
  },
};
