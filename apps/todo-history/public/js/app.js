import { $ } from '/ops/assets/js/dom.js';
import { initMessages } from '/ops/assets/js/messages.js';
import { api, currentUser, setUser } from './api.js';
import { createBoard } from './board.js';
import { createHistory } from './history.js';

// The operations view is the console at ops/ now: links to the old #ops view land there.
if (location.hash === '#ops') location.replace('ops/');

initMessages($('#message-area'));

const top = $('#top');
new ResizeObserver(() => document.documentElement.style.setProperty('--top-height', `${top.offsetHeight}px`)).observe(top);

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
const badge = $('[data-testid="dead-letter-badge"]');

/** The count of open dead letters beside the link to the operations console. */
async function refreshBadge() {
  try {
    const counts = await api('GET', 'ops/api/dead-letters/counts');
    const open = counts.reduce((sum, entry) => sum + entry.count, 0);
    badge.hidden = open === 0;
    badge.textContent = String(open);
  } catch {
    badge.hidden = true;
  }
}

await board.reload();
await timeline.refreshGroups();
await refreshBadge();

setInterval(async () => {
  if (document.hidden) return;
  await board.refreshIfIdle();
  await timeline.refreshGroups();
}, 5000);
setInterval(() => {
  if (!document.hidden) refreshBadge();
}, 15000);
