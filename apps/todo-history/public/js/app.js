import { currentUser, opsToken, setOpsToken, setUser } from './api.js';
import { createBoard } from './board.js';
import { $ } from './dom.js';
import { createHistory } from './history.js';
import { initMessages, showInfo } from './messages.js';
import { createOps } from './ops.js';

const tokenPanel = $('#ops-token-panel');
const tokenInput = $('#ops-token-input');
const tokenReason = $('#ops-token-reason');
const tokenToggle = $('#ops-token-toggle');

function openTokenPanel(error) {
  tokenReason.textContent = error
    ? `The server refused this change: ${error.message} Enter an ops token to try again.`
    : 'Operations that change state may need a token. It is kept for this browser tab only.';
  tokenPanel.hidden = false;
  tokenInput.value = opsToken();
  tokenInput.focus();
}

function renderTokenState() {
  tokenToggle.textContent = opsToken() ? 'Ops token ✓' : 'Ops token';
  tokenToggle.title = opsToken() ? 'An ops token is set for this tab' : 'Set an ops token';
}

initMessages($('#message-area'), openTokenPanel);

const top = $('#top');
new ResizeObserver(() => document.documentElement.style.setProperty('--top-height', `${top.offsetHeight}px`)).observe(top);

tokenPanel.addEventListener('submit', (event) => {
  event.preventDefault();
  setOpsToken(tokenInput.value.trim());
  tokenPanel.hidden = true;
  renderTokenState();
  showInfo(opsToken() ? 'Ops token saved for this tab. Try the action again.' : 'Ops token cleared.');
});
$('#ops-token-clear').addEventListener('click', () => {
  setOpsToken('');
  tokenInput.value = '';
  tokenPanel.hidden = true;
  renderTokenState();
  showInfo('Ops token cleared.');
});
$('#ops-token-close').addEventListener('click', () => {
  tokenPanel.hidden = true;
});
tokenToggle.addEventListener('click', () => {
  if (tokenPanel.hidden) openTokenPanel();
  else tokenPanel.hidden = true;
});
renderTokenState();

const userInput = $('#user-input');
userInput.value = currentUser();
userInput.addEventListener('input', () => setUser(userInput.value));
userInput.addEventListener('change', () => {
  userInput.value = currentUser();
});

let timeline;
const board = createBoard({
  list: $('#group-list'),
  form: $('#group-form'),
  refreshButton: $('#board-refresh'),
  onShowHistory: (groupId, taskId, options) => timeline.select(groupId, taskId, options),
  onChanged: () => timeline.refreshGroups(),
});
timeline = createHistory({
  groupSelect: $('#history-group'),
  taskSelect: $('#history-task'),
  eventTypeSelect: $('#history-event-type'),
  userFilter: $('#history-user'),
  list: $('#history-list'),
  loadMore: $('#history-load-more'),
  live: $('#history-live'),
  boardGroups: () => board.groups(),
});
const ops = createOps({
  groupsBody: $('#ops-groups-body'),
  deadBody: $('#dead-letter-body'),
  deadCount: $('#dead-letter-count'),
  relay: $('#relay-stats'),
  live: $('#ops-live'),
  badge: document.querySelector('[data-testid="dead-letter-badge"]'),
});

const views = { board: $('#view-board'), ops: $('#view-ops') };
let view = 'board';

function show(name) {
  view = views[name] ? name : 'board';
  for (const [key, element] of Object.entries(views)) element.hidden = key !== view;
  for (const tab of document.querySelectorAll('.tab')) tab.setAttribute('aria-selected', String(tab.dataset.view === view));
  if (view === 'ops') ops.refresh();
}

for (const tab of document.querySelectorAll('.tab')) {
  tab.addEventListener('click', () => {
    window.history.replaceState(null, '', tab.dataset.view === 'board' ? location.pathname : `#${tab.dataset.view}`);
    show(tab.dataset.view);
  });
}
window.addEventListener('hashchange', () => show(location.hash.slice(1)));

show(location.hash.slice(1));
await board.reload();
await timeline.refreshGroups();
ops.refresh();

setInterval(() => {
  if (document.hidden) return;
  if (view === 'ops') ops.refresh();
}, 2000);
setInterval(async () => {
  if (document.hidden || view !== 'board') return;
  await board.refreshIfIdle();
  await timeline.refreshGroups();
}, 5000);
setInterval(() => {
  if (!document.hidden && view !== 'ops') ops.refresh();
}, 15000);
