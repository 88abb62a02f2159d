import { api, consoleToken, setConsoleToken } from './api.js';
import { $, formatTime, h } from './dom.js';
import { clearMessage, initMessages, showError, showInfo } from './messages.js';
import { chartsPanel } from './panels/charts-panel.js';
import { deadLettersPanel } from './panels/dead-letters-panel.js';
import { groupsPanel } from './panels/groups-panel.js';
import { holdersPanel } from './panels/holders-panel.js';
import { parkedPanel } from './panels/parked-panel.js';
import { projectionsPanel } from './panels/projections-panel.js';
import { relayPanel } from './panels/relay-panel.js';
import { scheduledPanel } from './panels/scheduled-panel.js';

/** The panels in page order; each is one module with an id, a title, a short nav label and create(context) → { element, refresh }. */
const panels = [chartsPanel, groupsPanel, holdersPanel, deadLettersPanel, parkedPanel, scheduledPanel, projectionsPanel, relayPanel];

const fallbackInfo = {
  tokenRequired: false,
  tokenName: 'the console token',
  readOnly: false,
  refreshMs: 2000,
  deadLetterLimit: 100,
  parkedLimit: 100,
  scheduledLimit: 100,
  database: '',
};

const tokenPanel = $('#token-panel');
const tokenInput = $('#token-input');
const tokenReason = $('#token-reason');
const tokenToggle = $('#token-toggle');
const live = $('#live');
const badge = $('#dead-letter-badge');
const parkedBadge = $('#parked-badge');

function openTokenPanel(error) {
  tokenReason.textContent = error
    ? `The server refused this change: ${error.message} Enter the token to try again.`
    : 'Changes (retry, discard, release, cancel, pause, reset, rebuild) need the console token when it has one. It is kept for this browser tab only.';
  tokenPanel.hidden = false;
  tokenInput.value = consoleToken();
  tokenInput.focus();
}

function renderTokenState() {
  tokenToggle.textContent = consoleToken() ? 'Token ✓' : 'Token';
  tokenToggle.title = consoleToken() ? 'A token is set for this tab' : 'Set the console token';
}

initMessages($('#message-area'), openTokenPanel);

tokenPanel.addEventListener('submit', (event) => {
  event.preventDefault();
  setConsoleToken(tokenInput.value.trim());
  tokenPanel.hidden = true;
  renderTokenState();
  showInfo(consoleToken() ? 'Token saved for this tab. Try the action again.' : 'Token cleared.');
});
$('#token-clear').addEventListener('click', () => {
  setConsoleToken('');
  tokenInput.value = '';
  tokenPanel.hidden = true;
  renderTokenState();
  showInfo('Token cleared.');
});
$('#token-close').addEventListener('click', () => {
  tokenPanel.hidden = true;
});
tokenToggle.addEventListener('click', () => {
  if (tokenPanel.hidden) openTokenPanel();
  else tokenPanel.hidden = true;
});
renderTokenState();

let info = fallbackInfo;
try {
  info = { ...fallbackInfo, ...(await api('GET', 'api/console')) };
} catch (error) {
  showError(error, 'Loading the console settings', 'console-info');
}
if (info.readOnly) {
  $('#read-only').hidden = false;
  $('#read-only-reason').textContent = `Set ${info.tokenName} to retry, discard, reset and rebuild from here.`;
}
tokenToggle.hidden = !info.tokenRequired;
if (info.database) $('#database').textContent = info.database;

const mounted = [];
let refreshing;
let again = false;

/** Refreshes every panel at once; a call during a refresh runs one more after it. */
async function refreshAll() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      again = false;
      const results = await Promise.allSettled(mounted.map((panel) => panel.refresh()));
      results.forEach((result, index) => {
        const panel = mounted[index];
        if (result.status === 'fulfilled') clearMessage(`panel-${panel.id}`);
        else showError(result.reason, `Loading ${panel.title.toLowerCase()}`, `panel-${panel.id}`);
      });
      live.textContent = `Updated ${formatTime(new Date())}`;
    } while (again);
  })();
  try {
    await refreshing;
  } finally {
    refreshing = undefined;
  }
}

const context = {
  info,
  refreshAll,
  setBadge(open) {
    badge.hidden = open === 0;
    badge.textContent = String(open);
  },
  setParkedBadge(parked) {
    parkedBadge.hidden = parked === 0;
    parkedBadge.textContent = String(parked);
  },
};

const nav = $('#panel-nav');
const main = $('main');
for (const panel of panels) {
  const { element, refresh } = panel.create(context);
  const titleId = `${panel.id}-title`;
  main.append(
    h(
      'section',
      { class: 'panel', id: `panel-${panel.id}`, 'aria-labelledby': titleId, 'data-testid': `panel-${panel.id}` },
      h('div', { class: 'panel-head' }, h('h2', { id: titleId }, panel.title)),
      element,
    ),
  );
  nav.append(h('a', { href: `#panel-${panel.id}`, class: 'nav-link', title: panel.title }, panel.nav ?? panel.title));
  mounted.push({ id: panel.id, title: panel.title, refresh });
}

await refreshAll();
setInterval(() => {
  if (!document.hidden) refreshAll();
}, info.refreshMs);
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) refreshAll();
});
