import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendNames, call, historyRows, openSystem, type TestSystem, waitFor } from './support/system.js';

describe.each(backendNames)('todo API to history on %s', (backend) => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await openSystem(backend);
  });

  afterAll(async () => {
    await system?.cleanup();
  });

  it('turns every change into a history row of todo_event_logs, per event type, for groups and tasks', async () => {
    const group = await call(system, 'POST', '/api/groups', { name: 'Project Alpha', workspace: 'acme', user: 'alice' });
    expect(group.status).toBe(201);
    expect(group.body).toMatchObject({ name: 'Project Alpha', workspace: 'acme' });
    const groupId: string = group.body.groupId;
    expect(Object.keys(group.body)).toEqual(expect.arrayContaining(['groupId', 'name', 'workspace', 'createdAt']));

    expect((await call(system, 'PATCH', `/api/groups/${groupId}`, { name: 'Project Beta', user: 'alice' })).status).toBe(200);
    const task = await call(system, 'POST', `/api/groups/${groupId}/tasks`, { name: 'Fix bug #42', description: 'crash', user: 'bob' });
    expect(task.status).toBe(201);
    const taskId: string = task.body.taskId;
    expect(task.body).toMatchObject({ groupId, name: 'Fix bug #42', status: 'pending', commentCount: 0 });
    expect((await call(system, 'PATCH', `/api/tasks/${taskId}`, { name: 'Fix bug #43', user: 'bob' })).status).toBe(200);
    expect((await call(system, 'PUT', `/api/tasks/${taskId}/status`, { status: 'in-progress', user: 'carol' })).body.status).toBe(
      'in-progress',
    );
    const comment = await call(system, 'POST', `/api/tasks/${taskId}/comments`, { text: 'On it', user: 'carol' });
    expect(comment.status).toBe(201);
    expect(comment.body).toMatchObject({ taskId, text: 'On it', user: 'carol' });

    const board = await call(system, 'GET', '/api/groups');
    expect(board.body).toEqual([
      expect.objectContaining({
        groupId,
        name: 'Project Beta',
        tasks: [expect.objectContaining({ taskId, name: 'Fix bug #43', status: 'in-progress', commentCount: 1 })],
      }),
    ]);

    const second = await call(system, 'POST', `/api/groups/${groupId}/tasks`, { name: 'Write docs', user: 'bob' });
    expect((await call(system, 'DELETE', `/api/tasks/${second.body.taskId}?user=dave`)).status).toBe(200);
    const deleted = await call(system, 'DELETE', `/api/groups/${groupId}?user=erin`);
    expect(deleted.body).toEqual({ groupId, deletedTaskIds: [taskId] });
    expect((await call(system, 'GET', '/api/groups')).body).toEqual([]);

    await waitFor(async () => (await historyRows(system)).length === 10, 10_000, 'ten history rows');
    const rows = await historyRows(system);
    const seen = rows.map((row) => [row.entity, row.event_type, row.changes, row.user_name]);
    expect(seen).toEqual([
      ['Group', 'created', "Group 'Project Alpha' was created", 'alice'],
      ['Group', 'updated', 'Group renamed from Project Alpha to Project Beta', 'alice'],
      ['Task', 'created', "Task 'Fix bug #42' was created", 'bob'],
      ['Task', 'updated', 'Task renamed from Fix bug #42 to Fix bug #43', 'bob'],
      ['Task', 'status_changed', 'Status changed from pending to in-progress', 'carol'],
      ['Task', 'commented', 'Comment added: On it', 'carol'],
      ['Task', 'created', "Task 'Write docs' was created", 'bob'],
      ['Task', 'deleted', "Task 'Write docs' was deleted", 'dave'],
      ['Task', 'deleted', "Task 'Fix bug #43' was deleted", 'erin'],
      ['Group', 'deleted', "Group 'Project Beta' was deleted", 'erin'],
    ]);
    for (const row of rows) {
      expect(row.group_id).toBe(groupId);
      expect(row.workspace).toBe('acme');
      expect(row.timestamp_fallback).toBe(false);
      expect(row.source_topic).toBe('todo-history-events');
      expect(row.entity_id).toBe(row.entity === 'Group' ? groupId : row.task_id);
      if (row.entity === 'Group') expect([row.task_id, row.task_name]).toEqual([null, null]);
      expect(new Date(row.timestamp).toISOString()).toBe(row.event_data.timestamp);
    }
    // Names as they were when each event happened.
    expect(rows[0]?.group_name).toBe('Project Alpha');
    expect(rows[2]?.group_name).toBe('Project Beta');
    expect(rows[2]?.task_name).toBe('Fix bug #42');
    expect(rows[4]?.task_name).toBe('Fix bug #43');

    // Each payload is exactly an event in the todo-history event format, keyed by group, typed todo.<entity>.<eventType>.
    const { rows: messages } = await system.postbox.db.query<Record<string, any>>(
      `select message_id::text as id, type, key, payload from postbox.messages where topic = 'todo-history-events' order by global_position`,
    );
    expect(messages.map((m) => m.type)).toEqual([
      'todo.group.created',
      'todo.group.updated',
      'todo.task.created',
      'todo.task.updated',
      'todo.task.status_changed',
      'todo.task.commented',
      'todo.task.created',
      'todo.task.deleted',
      'todo.task.deleted',
      'todo.group.deleted',
    ]);
    expect(new Set(messages.map((m) => m.key))).toEqual(new Set([groupId]));
    const status = messages[4]?.payload;
    expect(Object.keys(status).sort()).toEqual(['eventType', 'payload', 'timestamp']);
    expect(status).toEqual({
      eventType: 'status_changed',
      timestamp: status.timestamp,
      payload: {
        entity: 'Task',
        entityId: taskId,
        groupId,
        groupName: 'Project Beta',
        taskId,
        taskName: 'Fix bug #43',
        changes: 'Status changed from pending to in-progress',
        user: 'carol',
        workspace: 'acme',
        timestamp: status.timestamp,
      },
    });
    expect(rows.map((row) => row.message_id)).toEqual(messages.map((m) => m.id));
  });

  it('answers the four history reads with the documented field names', async () => {
    const group = await call(system, 'POST', '/api/groups', { name: 'Reads', user: 'alice' });
    const groupId: string = group.body.groupId;
    const task = await call(system, 'POST', `/api/groups/${groupId}/tasks`, { name: 'Read me', user: 'bob' });
    const taskId: string = task.body.taskId;
    await call(system, 'PUT', `/api/tasks/${taskId}/status`, { status: 'completed', user: 'bob' });
    await waitFor(async () => (await call(system, 'GET', `/api/logs/group/${groupId}`)).body.items.length === 3, 10_000, 'three rows');

    const logs = await call(system, 'GET', `/api/logs/group/${groupId}`);
    expect(logs.body.nextCursor).toBeNull();
    expect(logs.body.items.map((item: any) => item.eventType)).toEqual(['status_changed', 'created', 'created']);
    expect(Object.keys(logs.body.items[0]).sort()).toEqual(
      [
        'changes',
        'entity',
        'entityId',
        'eventType',
        'groupId',
        'groupName',
        'id',
        'messageId',
        'taskId',
        'taskName',
        'timestamp',
        'timestampFallback',
        'user',
        'workspace',
      ].sort(),
    );
    const taskLogs = await call(system, 'GET', `/api/logs/task/${taskId}`);
    expect(taskLogs.body.items.map((item: any) => item.changes)).toEqual([
      'Status changed from pending to completed',
      "Task 'Read me' was created",
    ]);
    const tasks = await call(system, 'GET', `/api/logs/group/${groupId}/tasks`);
    expect(tasks.body).toEqual({
      items: [{ taskId, taskName: 'Read me', logCount: 2, lastActivity: taskLogs.body.items[0].timestamp }],
      nextCursor: null,
    });
    const groups = await call(system, 'GET', '/api/logs/groups');
    expect(groups.body.items[0]).toEqual({ groupId, groupName: 'Reads', logCount: 3, lastActivity: taskLogs.body.items[0].timestamp });
  });
});
