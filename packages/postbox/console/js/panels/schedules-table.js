import { api } from '../api.js';
import { dataTable, emptyRow, formatTime, h, isoTitle, statusChip } from '../dom.js';
import { clearMessage, showError, showInfo } from '../messages.js';

const enc = encodeURIComponent;
const columns = 7;

/** The recurring schedules, with pause and resume (from the first tick after now: paused ticks are not caught up). */
export function schedulesTable(context) {
  const body = h('tbody', { 'data-testid': 'schedules-list' });
  const element = dataTable(
    { 'data-testid': 'schedules' },
    ['Schedule', 'When', 'Appends', 'Status', 'Next tick', 'Last tick', ['Actions', 'actions-col']],
    body,
  );

  async function act(name, action) {
    try {
      await api('POST', `api/schedules/${enc(name)}/${action}`, {});
      clearMessage('schedule-action');
      showInfo(`Schedule ${name} ${action === 'pause' ? 'paused' : 'resumed'}`);
    } catch (error) {
      showError(error, `Schedule ${name}: ${action}`, 'schedule-action');
    } finally {
      await context.refreshAll();
    }
  }

  function row(schedule) {
    const action = schedule.status === 'paused' ? 'resume' : 'pause';
    const { topic, type, key } = schedule.message;
    return h(
      'tr',
      { 'data-testid': 'schedule-row', 'data-schedule': schedule.name, 'data-status': schedule.status },
      h('td', { class: 'mono' }, schedule.name),
      h('td', { class: 'mono' }, schedule.cron, h('div', { class: 'muted small-text' }, schedule.timeZone)),
      h('td', { class: 'mono' }, topic, h('div', { class: 'muted small-text' }, key === null ? type : `${type} · ${key}`)),
      h('td', {}, statusChip(schedule.status)),
      h(
        'td',
        { title: isoTitle(schedule.nextTickAt), 'data-testid': 'schedule-next-tick' },
        schedule.status === 'paused' ? 'paused' : formatTime(schedule.nextTickAt),
      ),
      h('td', { title: isoTitle(schedule.lastTickAt) }, formatTime(schedule.lastTickAt)),
      h(
        'td',
        { class: 'actions-col' },
        h(
          'button',
          {
            type: 'button',
            class: 'button small',
            'data-testid': `schedule-${action}`,
            disabled: context.info.readOnly,
            onclick: () => act(schedule.name, action),
          },
          action === 'pause' ? 'Pause' : 'Resume',
        ),
      ),
    );
  }

  async function refresh() {
    const schedules = await api('GET', 'api/schedules');
    body.replaceChildren(...(schedules.length === 0 ? [emptyRow(columns, 'No schedules.', 'schedules-empty')] : schedules.map(row)));
  }

  return { element, refresh };
}
