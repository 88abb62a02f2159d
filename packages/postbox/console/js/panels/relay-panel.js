import { api } from '../api.js';
import { formatSeconds, formatTime, h, labelOf } from '../dom.js';

function formatValue(key, value) {
  if (value === null || value === undefined) return '—';
  if (/At$/.test(key)) return formatTime(value);
  if (/Seconds$/.test(key)) return formatSeconds(value);
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** The relay's statistics, when the console was given a relay. */
export const relayPanel = {
  id: 'relay',
  title: 'Relay',
  nav: 'Relay',
  create() {
    const element = h('div', { id: 'relay-stats', 'data-testid': 'relay-stats' });

    async function refresh() {
      const stats = await api('GET', 'api/relay');
      if (!stats.enabled) {
        element.replaceChildren(
          h('p', { class: 'muted', 'data-testid': 'relay-disabled' }, 'No relay: this console was given none to show.'),
        );
        return;
      }
      const rows = Object.entries(stats)
        .filter(([key]) => key !== 'enabled')
        .map(([key, value]) =>
          h('div', { class: 'stat', 'data-key': key }, h('dt', {}, labelOf(key)), h('dd', {}, formatValue(key, value))),
        );
      element.replaceChildren(h('dl', { class: 'stats', 'data-testid': 'relay-stats-list' }, rows));
    }

    return { element, refresh };
  },
};
