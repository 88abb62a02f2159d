import { formatTime, h, isoTitle } from '/ops/assets/js/dom.js';
import { clearMessage, showError } from '/ops/assets/js/messages.js';
import { api, listOf, query } from './api.js';

const pageSize = 50;
const pollMs = 1000;
const enc = encodeURIComponent;

/** The history timeline of one group or one task, newest first, polled every second. */
export function createHistory({ groupSelect, taskSelect, eventTypeSelect, userFilter, list, loadMore, live, boardGroups }) {
  const selection = { groupId: '', taskId: '' };
  let logGroups = [];
  let logTasks = [];
  let entries = new Map();
  let nextCursor = null;
  let loadedMore = false;
  let generation = 0;
  let lastSignature = '';
  let lastUpdated = null;
  let timer;

  function filters() {
    return { eventType: eventTypeSelect.value, user: userFilter.value.trim() };
  }

  function path(cursor) {
    const base = selection.taskId ? `/api/logs/task/${enc(selection.taskId)}` : `/api/logs/group/${enc(selection.groupId)}`;
    return `${base}${query({ limit: pageSize, cursor, ...filters() })}`;
  }

  function reset() {
    generation += 1;
    entries = new Map();
    nextCursor = null;
    loadedMore = false;
    lastSignature = '';
    lastUpdated = null;
    render();
  }

  function merge(items) {
    for (const item of items) entries.set(String(item.id ?? item.messageId ?? `${item.timestamp}-${item.changes}`), item);
  }

  async function poll() {
    if (!selection.groupId && !selection.taskId) return;
    const mine = generation;
    try {
      const page = await api('GET', path());
      if (mine !== generation) return;
      merge(listOf(page, 'logs'));
      if (!loadedMore) nextCursor = page?.nextCursor ?? null;
      lastUpdated = new Date();
      clearMessage('history-poll');
      render();
    } catch (error) {
      if (mine !== generation) return;
      live.textContent = 'Not updating: the last request failed';
      live.dataset.state = 'error';
      showError(error, 'Loading history', 'history-poll');
    }
  }

  async function more() {
    if (!nextCursor) return;
    const mine = generation;
    loadMore.disabled = true;
    try {
      const page = await api('GET', path(nextCursor));
      if (mine !== generation) return;
      merge(listOf(page, 'logs'));
      nextCursor = page?.nextCursor ?? null;
      loadedMore = true;
      render();
    } catch (error) {
      showError(error, 'Loading older history');
    } finally {
      loadMore.disabled = false;
    }
  }

  function sorted() {
    return [...entries.values()].sort((a, b) => {
      const byTime = Date.parse(b.timestamp) - Date.parse(a.timestamp);
      if (byTime) return byTime;
      return compareIds(b.id, a.id);
    });
  }

  function render() {
    const items = sorted();
    const hasSelection = Boolean(selection.groupId || selection.taskId);
    loadMore.hidden = !hasSelection || !nextCursor;
    if (!hasSelection) {
      live.textContent = 'Choose a group';
      live.dataset.state = 'idle';
    } else if (lastUpdated) {
      live.textContent = `Live · ${items.length} ${items.length === 1 ? 'entry' : 'entries'} · updated ${formatTime(lastUpdated)}`;
      live.dataset.state = 'live';
    } else {
      live.textContent = 'Loading…';
      live.dataset.state = 'idle';
    }
    const signature = `${hasSelection}|${lastUpdated ? 1 : 0}|${items.map((item) => item.id).join(',')}`;
    if (signature === lastSignature) return;
    lastSignature = signature;
    if (!hasSelection) {
      list.replaceChildren(
        h('li', { class: 'empty', 'data-testid': 'history-empty' }, 'Choose a group, or press History on a group or task.'),
      );
      return;
    }
    if (items.length === 0) {
      const text = lastUpdated ? 'No history entries yet. New changes show up here within a second or two.' : 'Loading…';
      list.replaceChildren(h('li', { class: 'empty', 'data-testid': 'history-empty' }, text));
      return;
    }
    list.replaceChildren(...items.map(entryView));
  }

  function renderGroupOptions() {
    const known = new Map();
    for (const group of boardGroups()) known.set(group.groupId, { groupId: group.groupId, name: group.name, onBoard: true });
    for (const group of logGroups) {
      const id = String(group.groupId);
      const current = known.get(id);
      known.set(id, { groupId: id, name: current?.name ?? group.groupName ?? id, onBoard: Boolean(current) });
    }
    if (selection.groupId && !known.has(selection.groupId))
      known.set(selection.groupId, { groupId: selection.groupId, name: selection.groupId, onBoard: false });
    const options = [h('option', { value: '' }, known.size ? 'Choose a group…' : 'No groups yet')];
    for (const group of [...known.values()].sort((a, b) => Number(b.onBoard) - Number(a.onBoard) || a.name.localeCompare(b.name))) {
      options.push(h('option', { value: group.groupId }, group.onBoard ? group.name : `${group.name} (deleted)`));
    }
    replaceOptions(groupSelect, options, selection.groupId);
  }

  function renderTaskOptions() {
    const known = new Map();
    const boardGroup = boardGroups().find((group) => group.groupId === selection.groupId);
    for (const task of boardGroup?.tasks ?? []) known.set(task.taskId, { taskId: task.taskId, name: task.name, onBoard: true });
    for (const task of logTasks) {
      const id = String(task.taskId);
      const current = known.get(id);
      known.set(id, { taskId: id, name: current?.name ?? task.taskName ?? id, onBoard: Boolean(current) });
    }
    if (selection.taskId && !known.has(selection.taskId))
      known.set(selection.taskId, { taskId: selection.taskId, name: selection.taskId, onBoard: false });
    const options = [h('option', { value: '' }, selection.groupId ? 'Whole group' : '—')];
    for (const task of known.values()) {
      options.push(h('option', { value: task.taskId }, task.onBoard ? task.name : `${task.name} (deleted)`));
    }
    taskSelect.disabled = !selection.groupId;
    replaceOptions(taskSelect, options, selection.taskId);
  }

  async function refreshGroups() {
    try {
      const all = [];
      let cursor;
      for (let page = 0; page < 5; page += 1) {
        const data = await api('GET', `/api/logs/groups${query({ limit: 100, cursor })}`);
        all.push(...listOf(data, 'groups'));
        cursor = data?.nextCursor;
        if (!cursor) break;
      }
      logGroups = all;
      clearMessage('history-groups');
    } catch (error) {
      showError(error, 'Loading the groups with history', 'history-groups');
    }
    renderGroupOptions();
    await refreshTasks();
  }

  async function refreshTasks() {
    const groupId = selection.groupId;
    if (groupId) {
      try {
        const data = await api('GET', `/api/logs/group/${enc(groupId)}/tasks${query({ limit: 200 })}`);
        if (groupId !== selection.groupId) return;
        logTasks = listOf(data, 'tasks');
      } catch (error) {
        showError(error, 'Loading the tasks with history', 'history-tasks');
      }
    } else {
      logTasks = [];
    }
    renderTaskOptions();
  }

  function select(groupId, taskId = '', { onlyIfNone = false } = {}) {
    if (onlyIfNone && selection.groupId) return;
    const groupChanged = selection.groupId !== (groupId ?? '');
    selection.groupId = groupId ?? '';
    selection.taskId = taskId ?? '';
    if (groupChanged) logTasks = [];
    renderGroupOptions();
    renderTaskOptions();
    reset();
    poll();
    if (groupChanged) refreshTasks();
  }

  groupSelect.addEventListener('change', () => select(groupSelect.value, ''));
  taskSelect.addEventListener('change', () => select(selection.groupId, taskSelect.value));
  eventTypeSelect.addEventListener('change', () => {
    reset();
    poll();
  });
  let filterTimer;
  userFilter.addEventListener('input', () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => {
      reset();
      poll();
    }, 300);
  });
  loadMore.addEventListener('click', more);

  function loop() {
    timer = setTimeout(async () => {
      if (!document.hidden) await poll();
      loop();
    }, pollMs);
  }

  render();
  renderGroupOptions();
  renderTaskOptions();
  loop();

  return {
    select,
    refreshGroups,
    stop: () => clearTimeout(timer),
  };
}

function entryView(item) {
  const entity = item.entity === 'Group' ? item.groupName : item.taskName;
  return h(
    'li',
    {
      class: `entry event-${String(item.eventType).replace(/[^a-z_-]/gi, '')}`,
      'data-testid': 'history-entry',
      'data-id': item.id,
      'data-event-type': item.eventType,
      'data-entity': item.entity,
    },
    h(
      'div',
      { class: 'entry-meta' },
      h(
        'time',
        { datetime: isoTitle(item.timestamp), title: isoTitle(item.timestamp), 'data-testid': 'history-time' },
        formatTime(item.timestamp),
      ),
      h('span', { class: 'event-badge', 'data-testid': 'history-event-type' }, item.eventType),
      h(
        'span',
        { class: 'entity', 'data-testid': 'history-entity' },
        item.entity,
        entity ? h('span', { class: 'entity-name' }, ` · ${entity}`) : null,
      ),
      item.timestampFallback
        ? h(
            'span',
            {
              class: 'fallback',
              'data-testid': 'history-fallback',
              title: 'The event carried no readable timestamp, so the time it was stored is shown instead.',
            },
            'ingestion time',
          )
        : null,
      h('span', { class: 'user', 'data-testid': 'history-user' }, item.user || 'unknown user'),
    ),
    h('p', { class: 'changes', 'data-testid': 'history-changes' }, item.changes || `${item.eventType} ${item.entity}`),
  );
}

function compareIds(a, b) {
  const x = String(a ?? '');
  const y = String(b ?? '');
  if (/^\d+$/.test(x) && /^\d+$/.test(y)) return x.length - y.length || (x < y ? -1 : x > y ? 1 : 0);
  return x < y ? -1 : x > y ? 1 : 0;
}

function replaceOptions(select, options, value) {
  const signature = options.map((option) => `${option.value}=${option.textContent}`).join('\n');
  if (select.dataset.signature === signature) {
    if (select.value !== value) select.value = value;
    return;
  }
  select.dataset.signature = signature;
  const focused = document.activeElement === select;
  select.replaceChildren(...options);
  select.value = value;
  if (select.value !== value) select.value = '';
  if (focused) select.focus();
}
