import { api, query } from '../api.js';
import { confirmButton, dataTable, emptyRow, formatSeconds, formatTime, h, isoTitle } from '../dom.js';
import { clearMessage, showError, showInfo } from '../messages.js';
import { schedulesTable } from './schedules-table.js';

const enc = encodeURIComponent;
const columns = 7;

/** What waits, what is overdue, and which process moves due messages into the log. */
function timeSummary(status) {
  const parts = [`${status.scheduledMessages} waiting`];
  if (status.dueMessages > 0) parts.push(`${status.dueMessages} due`);
  if (status.nextDueAt) parts.push(`next due ${formatTime(status.nextDueAt)}`);
  if (status.overdueSeconds > 0) parts.push(`overdue by ${formatSeconds(status.overdueSeconds)}`);
  parts.push(
    status.timekeeper ? `kept by ${status.timekeeper.owner} since ${formatTime(status.timekeeper.since)}` : 'no process keeps time',
  );
  return `${parts.join('; ')}.`;
}

/**
 * Messages waiting for their delivery time, the soonest due first, with cancel; and the recurring
 * schedules that append one on each tick, with pause and resume.
 */
export const scheduledPanel = {
  id: 'scheduled',
  title: 'Scheduled messages',
  nav: 'Scheduled',
  create(context) {
    const topic = h('input', {
      type: 'search',
      placeholder: 'any topic',
      spellcheck: 'false',
      'data-testid': 'scheduled-filter-topic',
      'aria-label': 'Topic',
    });
    const key = h('input', {
      type: 'search',
      placeholder: 'any key',
      spellcheck: 'false',
      'data-testid': 'scheduled-filter-key',
      'aria-label': 'Key',
    });
    const summary = h('span', { class: 'muted small-text', 'data-testid': 'time-status' });
    const count = h('span', { class: 'muted small-text', 'data-testid': 'scheduled-count' });
    const body = h('tbody', { 'data-testid': 'scheduled-list' });
    const schedules = schedulesTable(context);
    const form = h(
      'form',
      { class: 'filters', 'data-testid': 'scheduled-filters' },
      h('label', { class: 'inline-field' }, h('span', {}, 'Topic'), topic),
      h('label', { class: 'inline-field' }, h('span', {}, 'Key'), key),
      count,
    );
    const element = h(
      'div',
      {},
      h('div', { class: 'panel-note' }, summary),
      form,
      dataTable({ 'data-testid': 'scheduled' }, ['Id', 'Topic', 'Type', 'Key', 'Due', 'Written', ['Actions', 'actions-col']], body),
      h('h3', { class: 'sub-head' }, 'Schedules'),
      schedules.element,
    );
    async function cancel(id) {
      try {
        await api('POST', `api/scheduled/${enc(id)}/cancel`, {});
        clearMessage('scheduled-action');
        showInfo(`Scheduled message ${id} cancelled: it will not be delivered`);
      } catch (error) {
        showError(error, 'Cancelling the scheduled message', 'scheduled-action');
      } finally {
        await context.refreshAll();
      }
    }

    function row(message) {
      const dueIn = (Date.parse(message.dueAt) - Date.now()) / 1000;
      return h(
        'tr',
        { 'data-testid': 'scheduled-row', 'data-id': message.id, 'data-topic': message.topic, 'data-key': message.key ?? '' },
        h('td', { class: 'mono small-text' }, message.id),
        h('td', { class: 'mono' }, message.topic),
        h('td', { class: 'mono' }, message.type),
        h('td', { class: 'mono' }, message.key ?? '—'),
        h(
          'td',
          { title: isoTitle(message.dueAt), 'data-testid': 'scheduled-due' },
          formatTime(message.dueAt),
          h('div', { class: 'muted small-text' }, dueIn > 0 ? `in ${formatSeconds(dueIn)}` : 'due now'),
        ),
        h('td', { title: isoTitle(message.createdAt) }, formatTime(message.createdAt)),
        h(
          'td',
          { class: 'actions-col' },
          confirmButton('Cancel', 'Confirm cancel', { 'data-testid': 'scheduled-cancel', disabled: context.info.readOnly }, () =>
            cancel(message.id),
          ),
        ),
      );
    }

    async function refresh() {
      const [messages, status] = await Promise.all([
        api('GET', `api/scheduled${query({ topic: topic.value.trim(), key: key.value })}`),
        api('GET', 'api/time-status'),
        schedules.refresh(),
      ]);
      summary.textContent = timeSummary(status);
      const limit = context.info.scheduledLimit;
      count.textContent = `${messages.length} shown${messages.length >= limit ? ` (the soonest ${limit})` : ''}`;
      // A button waiting for its confirming click keeps its row until it is clicked or times out.
      if (body.querySelector('[data-armed="true"]')) return;
      body.replaceChildren(
        ...(messages.length === 0
          ? [
              emptyRow(
                columns,
                status.scheduledMessages === 0 ? 'No message waits for its time.' : 'None with this topic and key.',
                'scheduled-empty',
              ),
            ]
          : messages.map(row)),
      );
    }

    const reload = () => refresh().catch((error) => showError(error, 'Loading scheduled messages', 'panel-scheduled'));
    topic.addEventListener('change', reload);
    key.addEventListener('change', reload);
    form.addEventListener('submit', (event) => event.preventDefault());
    return { element, refresh };
  },
};
