import { confirmButton, h } from '/ops/assets/js/dom.js';
import { clearMessage, showError, showInfo } from '/ops/assets/js/messages.js';
import { api, currentUser, listOf, query } from './api.js';

export const statuses = ['pending', 'in-progress', 'completed'];

const enc = encodeURIComponent;

/** The todo board: groups with their tasks, and every change a user can make to them. */
export function createBoard({ list, form, refreshButton, onShowHistory, onChanged }) {
  let groups = [];
  let loaded = false;

  async function reload() {
    try {
      groups = listOf(await api('GET', '/api/groups'), 'groups').map(normalizeGroup);
      loaded = true;
      render();
    } catch (error) {
      showError(error, 'Loading the board', 'board-load');
    }
    return groups;
  }

  async function mutate(context, action, success) {
    try {
      const result = await action();
      clearMessage(context);
      if (success) showInfo(typeof success === 'function' ? success(result) : success);
      await reload();
      onChanged?.(result);
      return result ?? true;
    } catch (error) {
      showError(error, context);
      await reload();
      return undefined;
    }
  }

  function busy() {
    const active = document.activeElement;
    const typing = active !== null && list.contains(active) && active.matches('input, select, textarea');
    return typing || list.querySelector('form.editor:not([hidden]), [data-armed="true"]') !== null;
  }

  function render() {
    list.replaceChildren();
    if (!loaded) return;
    if (groups.length === 0) {
      list.append(h('p', { class: 'empty', 'data-testid': 'board-empty' }, 'No groups yet. Create one above to start.'));
      return;
    }
    for (const group of groups) list.append(groupCard(group));
  }

  function groupCard(group) {
    const renameForm = editorForm(
      'group-rename-form',
      [
        h('input', {
          name: 'name',
          value: group.name,
          'data-testid': 'group-rename-input',
          'aria-label': 'New group name',
          required: true,
          maxlength: 200,
        }),
      ],
      'group-rename-save',
      async (data) => {
        const name = data.get('name').trim();
        if (!name || name === group.name) return true;
        return mutate(
          'Renaming the group',
          () => api('PATCH', `/api/groups/${enc(group.groupId)}`, { name, user: currentUser() }),
          `Group renamed to “${name}”`,
        );
      },
    );
    const taskForm = h(
      'form',
      { class: 'add-task', 'data-testid': 'task-form', autocomplete: 'off' },
      h('input', {
        name: 'name',
        placeholder: 'New task',
        'aria-label': 'Task name',
        'data-testid': 'task-name-input',
        required: true,
        maxlength: 200,
      }),
      h('input', {
        name: 'description',
        placeholder: 'Description (optional)',
        'aria-label': 'Task description',
        'data-testid': 'task-description-input',
        maxlength: 2000,
      }),
      h('button', { type: 'submit', class: 'button small', 'data-testid': 'task-create' }, 'Add task'),
    );
    taskForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      const data = new FormData(taskForm);
      const name = String(data.get('name')).trim();
      const description = String(data.get('description')).trim();
      if (!name) return;
      await mutate(
        'Creating the task',
        () => api('POST', `/api/groups/${enc(group.groupId)}/tasks`, { name, description: description || undefined, user: currentUser() }),
        `Task “${name}” created`,
      );
    });
    const tasks = group.tasks;
    return h(
      'article',
      { class: 'group-card', 'data-testid': 'group-card', 'data-group-id': group.groupId, 'data-group-name': group.name },
      h(
        'header',
        { class: 'group-head' },
        h(
          'div',
          { class: 'group-title' },
          h('h3', { 'data-testid': 'group-name' }, group.name),
          group.workspace ? h('span', { class: 'chip', title: 'Workspace', 'data-testid': 'group-workspace' }, group.workspace) : null,
          h('span', { class: 'muted small-text' }, `${tasks.length} ${tasks.length === 1 ? 'task' : 'tasks'}`),
        ),
        h(
          'div',
          { class: 'row-actions' },
          h(
            'button',
            { type: 'button', class: 'button ghost small', 'data-testid': 'group-history', onclick: () => onShowHistory(group.groupId) },
            'History',
          ),
          h(
            'button',
            { type: 'button', class: 'button ghost small', 'data-testid': 'group-rename', onclick: () => openEditor(renameForm) },
            'Rename',
          ),
          confirmButton('Delete', 'Confirm delete', { 'data-testid': 'group-delete', title: 'Delete the group and its tasks' }, () =>
            mutate(
              'Deleting the group',
              () => api('DELETE', `/api/groups/${enc(group.groupId)}${query({ user: currentUser() })}`),
              `Group “${group.name}” deleted`,
            ),
          ),
        ),
      ),
      renameForm,
      tasks.length > 0
        ? h(
            'ul',
            { class: 'task-list', 'data-testid': 'task-list' },
            tasks.map((task) => taskRow(group, task)),
          )
        : h('p', { class: 'empty small-text', 'data-testid': 'task-list-empty' }, 'No tasks in this group yet.'),
      taskForm,
    );
  }

  function taskRow(group, task) {
    const editForm = editorForm(
      'task-edit-form',
      [
        h('input', {
          name: 'name',
          value: task.name,
          'data-testid': 'task-edit-name',
          'aria-label': 'Task name',
          required: true,
          maxlength: 200,
        }),
        h('input', {
          name: 'description',
          value: task.description ?? '',
          'data-testid': 'task-edit-description',
          'aria-label': 'Task description',
          placeholder: 'Description',
          maxlength: 2000,
        }),
      ],
      'task-edit-save',
      async (data) => {
        const name = String(data.get('name')).trim();
        const description = String(data.get('description')).trim();
        const body = { user: currentUser() };
        if (name && name !== task.name) body.name = name;
        if (description !== (task.description ?? '')) body.description = description;
        if (body.name === undefined && body.description === undefined) return true;
        return mutate('Updating the task', () => api('PATCH', `/api/tasks/${enc(task.taskId)}`, body), 'Task updated');
      },
    );
    const commentForm = editorForm(
      'task-comment-form',
      [
        h('input', {
          name: 'text',
          placeholder: 'Write a comment',
          'data-testid': 'task-comment-input',
          'aria-label': 'Comment',
          required: true,
          maxlength: 2000,
        }),
      ],
      'task-comment-save',
      async (data) => {
        const text = String(data.get('text')).trim();
        if (!text) return false;
        return mutate(
          'Adding the comment',
          () => api('POST', `/api/tasks/${enc(task.taskId)}/comments`, { text, user: currentUser() }),
          'Comment added',
        );
      },
      'Add comment',
    );
    const status = h(
      'select',
      { class: `status status-${task.status}`, 'data-testid': 'task-status', 'aria-label': `Status of ${task.name}` },
      [...new Set([...statuses, task.status])].map((value) => h('option', { value, selected: value === task.status }, value)),
    );
    status.addEventListener('change', async () => {
      const next = status.value;
      const ok = await mutate('Changing the status', () =>
        api('PUT', `/api/tasks/${enc(task.taskId)}/status`, { status: next, user: currentUser() }),
      );
      if (ok === undefined) status.value = task.status;
    });
    const comments = Number(task.commentCount ?? 0);
    return h(
      'li',
      {
        class: 'task-row',
        'data-testid': 'task-row',
        'data-task-id': task.taskId,
        'data-task-name': task.name,
        'data-status': task.status,
      },
      h(
        'div',
        { class: 'task-line' },
        h(
          'div',
          { class: 'task-main' },
          h('span', { class: 'task-name', 'data-testid': 'task-name' }, task.name),
          task.description ? h('span', { class: 'task-desc', 'data-testid': 'task-description' }, task.description) : null,
        ),
        status,
        h(
          'span',
          { class: 'comment-count', 'data-testid': 'task-comment-count', title: 'Comments' },
          `${comments} ${comments === 1 ? 'comment' : 'comments'}`,
        ),
        h(
          'div',
          { class: 'row-actions' },
          h(
            'button',
            { type: 'button', class: 'button ghost small', 'data-testid': 'task-comment-toggle', onclick: () => openEditor(commentForm) },
            'Comment',
          ),
          h(
            'button',
            { type: 'button', class: 'button ghost small', 'data-testid': 'task-edit', onclick: () => openEditor(editForm) },
            'Edit',
          ),
          h(
            'button',
            {
              type: 'button',
              class: 'button ghost small',
              'data-testid': 'task-history',
              onclick: () => onShowHistory(group.groupId, task.taskId),
            },
            'History',
          ),
          confirmButton('Delete', 'Confirm', { 'data-testid': 'task-delete', title: 'Delete the task' }, () =>
            mutate(
              'Deleting the task',
              () => api('DELETE', `/api/tasks/${enc(task.taskId)}${query({ user: currentUser() })}`),
              `Task “${task.name}” deleted`,
            ),
          ),
        ),
      ),
      editForm,
      commentForm,
    );
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const name = String(data.get('name')).trim();
    const workspace = String(data.get('workspace')).trim();
    if (!name) return;
    const created = await mutate(
      'Creating the group',
      () => api('POST', '/api/groups', { name, workspace: workspace || undefined, user: currentUser() }),
      `Group “${name}” created`,
    );
    if (created) {
      form.reset();
      if (created.groupId) onShowHistory(created.groupId, undefined, { onlyIfNone: true });
    }
  });
  refreshButton.addEventListener('click', () => reload());

  return {
    reload,
    /** Refreshes unless the user is typing in or editing on the board. */
    refreshIfIdle: () => (busy() ? Promise.resolve(groups) : reload()),
    groups: () => groups,
  };
}

function normalizeGroup(group) {
  return {
    ...group,
    groupId: String(group.groupId ?? group.id),
    tasks: listOf(group.tasks ?? []).map((task) => ({ ...task, taskId: String(task.taskId ?? task.id), status: task.status ?? 'pending' })),
  };
}

function editorForm(testid, fields, saveTestid, onSave, saveLabel = 'Save') {
  const cancel = h('button', { type: 'button', class: 'button ghost small', 'data-testid': `${testid}-cancel` }, 'Cancel');
  const form = h(
    'form',
    { class: 'editor', 'data-testid': testid, hidden: true, autocomplete: 'off' },
    fields,
    h('button', { type: 'submit', class: 'button primary small', 'data-testid': saveTestid }, saveLabel),
    cancel,
  );
  cancel.addEventListener('click', () => {
    form.reset();
    form.hidden = true;
  });
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') cancel.click();
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const done = await onSave(new FormData(form));
    if (done) form.hidden = true;
  });
  return form;
}

function openEditor(form) {
  for (const other of form.closest('.group-list')?.querySelectorAll('form.editor:not([hidden])') ?? []) {
    if (other !== form) other.hidden = true;
  }
  form.hidden = false;
  form.querySelector('input')?.focus();
}
