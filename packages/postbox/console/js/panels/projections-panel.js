import { api } from '../api.js';
import { confirmButton, dataTable, emptyRow, formatSeconds, h, statusChip, truncate } from '../dom.js';
import { clearMessage, showError, showInfo } from '../messages.js';

const enc = encodeURIComponent;
const columns = 9;

/** Projections with their status and lag; rebuild, pause and resume, which every process running them honours. */
export const projectionsPanel = {
  id: 'projections',
  title: 'Projections',
  nav: 'Projections',
  create(context) {
    const body = h('tbody', { 'data-testid': 'projections-list' });
    const element = dataTable(
      { 'data-testid': 'projections' },
      [
        'Projection',
        'Status',
        'Version',
        'Categories',
        ['Lag (events)', 'num'],
        ['Lag (seconds)', 'num'],
        'Rebuild',
        'Last error',
        ['Actions', 'actions-col'],
      ],
      body,
    );

    async function act(name, action) {
      try {
        const record = await api('POST', `api/projections/${enc(name)}/${action}`, {});
        clearMessage('projection-action');
        const building = record.rebuildVersion ? ` (building v${record.rebuildVersion} beside v${record.activeVersion})` : '';
        showInfo(
          `Projection ${name}: ${{ rebuild: 'rebuild requested', pause: 'paused', resume: 'resumed' }[action]}${action === 'rebuild' ? building : ''}`,
        );
      } catch (error) {
        showError(error, `Projection ${name}: ${action}`, 'projection-action');
      } finally {
        await context.refreshAll();
      }
    }

    function row(projection) {
      const readOnly = context.info.readOnly;
      const rebuild = projection.rebuild;
      return h(
        'tr',
        { 'data-testid': 'projection-row', 'data-projection': projection.name, 'data-status': projection.status },
        h('td', { class: 'mono' }, projection.name),
        h('td', {}, statusChip(projection.status)),
        h('td', { 'data-testid': 'projection-version' }, `v${projection.activeVersion}`),
        h('td', { class: 'mono small-text' }, projection.categories.join(', ')),
        h(
          'td',
          { class: `num ${projection.lagEvents > 0 ? 'warn-text' : ''}`, 'data-testid': 'projection-lag' },
          String(projection.lagEvents),
        ),
        h('td', { class: 'num' }, formatSeconds(projection.lagSeconds)),
        h('td', { 'data-testid': 'projection-rebuild' }, rebuild ? `v${rebuild.version}, ${rebuild.lagEvents} to go` : '—'),
        projection.lastError
          ? h(
              'td',
              { class: 'error-text', title: projection.lastError },
              truncate(projection.lastError, 100),
              ` (${projection.failures} failures)`,
            )
          : h('td', { class: 'muted' }, '—'),
        h(
          'td',
          { class: 'actions-col' },
          h(
            'div',
            { class: 'row-actions' },
            confirmButton(
              'Rebuild',
              'Confirm rebuild',
              { 'data-testid': 'projection-rebuild-button', disabled: readOnly || Boolean(rebuild) },
              () => act(projection.name, 'rebuild'),
            ),
            projection.status === 'stopped'
              ? h(
                  'button',
                  {
                    type: 'button',
                    class: 'button small',
                    'data-testid': 'projection-resume',
                    disabled: readOnly,
                    onclick: () => act(projection.name, 'resume'),
                  },
                  'Resume',
                )
              : h(
                  'button',
                  {
                    type: 'button',
                    class: 'button small',
                    'data-testid': 'projection-pause',
                    disabled: readOnly,
                    onclick: () => act(projection.name, 'pause'),
                  },
                  'Pause',
                ),
          ),
        ),
      );
    }

    async function refresh() {
      const projections = await api('GET', 'api/projections');
      // A button waiting for its confirming click keeps its row until it is clicked or times out.
      if (body.querySelector('[data-armed="true"]')) return;
      body.replaceChildren(
        ...(projections.length === 0 ? [emptyRow(columns, 'No projections.', 'projections-empty')] : projections.map(row)),
      );
    }

    return { element, refresh };
  },
};
