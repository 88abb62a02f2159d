import { api, query } from '../api.js';
import { dataTable, emptyRow, formatSeconds, formatTime, h, isoTitle, truncate } from '../dom.js';

const columns = 9;

/**
 * The open writing transactions that hold every reader of the log back, anywhere on the server,
 * the one readers wait for first at the top: who opened it, where from, for how long, doing what.
 */
export const holdersPanel = {
  id: 'holders',
  title: 'Transactions holding readers back',
  nav: 'Holders',
  create() {
    const minSeconds = h(
      'select',
      { 'data-testid': 'holders-min-seconds', 'aria-label': 'Open for at least' },
      [
        ['0', 'all'],
        ['1', 'open 1 s or more'],
        ['5', 'open 5 s or more'],
        ['30', 'open 30 s or more'],
      ].map(([value, label]) => h('option', { value, selected: value === '1' }, label)),
    );
    const delay = h('span', { class: 'muted small-text', 'data-testid': 'watermark-delay' });
    const body = h('tbody', { 'data-testid': 'holders-list' });
    const element = h(
      'div',
      {},
      h('div', { class: 'panel-note' }, delay, h('label', { class: 'inline-field' }, h('span', {}, 'Show'), minSeconds)),
      dataTable(
        { 'data-testid': 'holders' },
        ['Session', 'Database', 'User', 'Application', 'Client', 'State', ['Open for', 'num'], 'Transaction', 'Last query'],
        body,
      ),
    );

    async function refresh() {
      const data = await api('GET', `api/holders${query({ minSeconds: minSeconds.value })}`);
      delay.textContent =
        data.watermarkDelaySeconds > 0
          ? `Readers wait for the oldest open writing transaction: ${formatSeconds(data.watermarkDelaySeconds)}.`
          : 'No open writing transaction holds readers back.';
      body.replaceChildren(...(data.holders.length === 0 ? [emptyRow(columns, 'None.', 'holders-empty')] : data.holders.map(holderRow)));
    }

    minSeconds.addEventListener('change', () => refresh().catch(() => undefined));
    return { element, refresh };
  },
};

function holderRow(holder) {
  return h(
    'tr',
    {
      'data-testid': 'holder-row',
      'data-kind': holder.kind,
      'data-pid': holder.pid ?? '',
      'data-database': holder.database ?? '',
      'data-application': holder.applicationName ?? '',
      'data-holds-watermark': String(holder.holdsWatermark),
    },
    h(
      'td',
      { class: 'mono' },
      holder.kind === 'prepared' ? `prepared ${JSON.stringify(holder.gid)}` : `pid ${holder.pid}`,
      holder.holdsWatermark
        ? h('span', { class: 'chip status-chip status-faulted', title: 'Readers stop at this transaction first' }, 'watermark')
        : null,
    ),
    h('td', { class: 'mono' }, holder.database ?? '—'),
    h('td', {}, holder.user ?? '—'),
    h('td', { class: 'mono', 'data-testid': 'holder-application' }, holder.applicationName ?? '—'),
    h('td', { class: 'mono' }, holder.clientAddress ?? 'local'),
    h('td', {}, holder.state ?? '—'),
    h(
      'td',
      { class: 'num', title: holder.queryStart ? `last query started ${isoTitle(holder.queryStart)}` : undefined },
      holder.transactionSeconds === null ? 'hidden' : formatSeconds(holder.transactionSeconds),
    ),
    h('td', { class: 'mono small-text' }, holder.transactionId),
    h(
      'td',
      { class: 'mono small-text', title: holder.query ?? undefined },
      holder.query ? truncate(holder.query.replace(/\s+/g, ' '), 80) : '—',
      holder.queryStart ? h('div', { class: 'muted' }, formatTime(holder.queryStart)) : null,
    ),
  );
}
