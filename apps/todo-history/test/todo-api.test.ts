import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, openSystem, type TestSystem } from './support/system.js';

async function messageCount(system: TestSystem): Promise<number> {
  const { rows } = await system.postbox.db.query<{ n: number }>('select count(*)::int as n from postbox.messages');
  return Number(rows[0]?.n);
}

describe('todo API input handling', () => {
  let system: TestSystem;
  let groupId: string;
  let taskId: string;

  beforeAll(async () => {
    system = await openSystem('postgres');
    groupId = (await call(system, 'POST', '/api/groups', { name: 'Inputs', user: 'alice' })).body.groupId;
    taskId = (await call(system, 'POST', `/api/groups/${groupId}/tasks`, { name: 'Task', user: 'alice' })).body.taskId;
  });

  afterAll(async () => {
    await system?.cleanup();
  });

  it('answers bad input with 400 and a message naming the field, and writes nothing', async () => {
    const before = await messageCount(system);
    const unknownUuid = '00000000-0000-4000-8000-000000000000';
    const cases: [string, 'POST' | 'PATCH' | 'PUT' | 'DELETE', string, unknown, RegExp][] = [
      ['no name', 'POST', '/api/groups', { user: 'alice' }, /^field name is required$/],
      ['empty name', 'POST', '/api/groups', { name: '   ', user: 'alice' }, /^field name must not be empty$/],
      ['long name', 'POST', '/api/groups', { name: 'n'.repeat(256), user: 'alice' }, /field name must be at most 255 characters/],
      ['NUL in a name', 'POST', '/api/groups', { name: 'a\u0000b', user: 'alice' }, /field name must not hold NUL/],
      [
        'lone surrogate',
        'POST',
        '/api/groups',
        '{"name": "a\\ud800", "user": "alice"}',
        /field name must not hold NUL or unpaired surrogate/,
      ],
      ['no user', 'POST', '/api/groups', { name: 'x' }, /^field user is required$/],
      ['workspace a number', 'POST', '/api/groups', { name: 'x', user: 'u', workspace: 7 }, /field workspace must be a string/],
      ['body an array', 'POST', '/api/groups', [{ name: 'x' }], /^body must be a JSON object$/],
      ['rename without a name', 'PATCH', `/api/groups/${groupId}`, { user: 'alice' }, /field name is required/],
      ['delete without a user', 'DELETE', `/api/groups/${groupId}`, undefined, /^parameter user is required$/],
      ['task update without changes', 'PATCH', `/api/tasks/${taskId}`, { user: 'alice' }, /must hold name or description/],
      [
        'unknown status',
        'PUT',
        `/api/tasks/${taskId}/status`,
        { status: 'done', user: 'alice' },
        /field status must be one of "pending", "in-progress", "completed"/,
      ],
      [
        'long comment',
        'POST',
        `/api/tasks/${taskId}/comments`,
        { text: 'c'.repeat(2_001), user: 'alice' },
        /field text must be at most 2000/,
      ],
      ['comment without text', 'POST', `/api/tasks/${taskId}/comments`, { user: 'alice' }, /field text is required/],
    ];
    for (const [name, method, url, body, message] of cases) {
      const answer = await call(system, method, url, body);
      expect(answer.status, name).toBe(400);
      expect(answer.body.error.code, name).toBe('TODO_ERR_BAD_REQUEST');
      expect(answer.body.error.message, name).toMatch(message);
    }

    const notFound: [string, 'POST' | 'PATCH' | 'PUT' | 'DELETE' | 'GET', string, unknown][] = [
      ['rename unknown group', 'PATCH', `/api/groups/${unknownUuid}`, { name: 'x', user: 'u' }],
      ['rename non-uuid group', 'PATCH', '/api/groups/not-a-uuid', { name: 'x', user: 'u' }],
      ['delete unknown group', 'DELETE', `/api/groups/${unknownUuid}?user=u`, undefined],
      ['task in unknown group', 'POST', `/api/groups/${unknownUuid}/tasks`, { name: 'x', user: 'u' }],
      ['update unknown task', 'PATCH', `/api/tasks/${unknownUuid}`, { name: 'x', user: 'u' }],
      ['status of unknown task', 'PUT', `/api/tasks/${unknownUuid}/status`, { status: 'completed', user: 'u' }],
      ['delete unknown task', 'DELETE', `/api/tasks/${unknownUuid}?user=u`, undefined],
      ['comment on unknown task', 'POST', `/api/tasks/${unknownUuid}/comments`, { text: 'x', user: 'u' }],
      ['unknown route', 'GET', '/api/nothing-here', undefined],
    ];
    for (const [name, method, url, body] of notFound) {
      const answer = await call(system, method, url, body);
      expect(answer.status, name).toBe(404);
      expect(answer.body.error.code, name).toBe('TODO_ERR_NOT_FOUND');
    }

    const badJson = await call(system, 'POST', '/api/groups', '{"name": ');
    expect(badJson.status).toBe(400);
    expect(badJson.body.error.code).toBe('TODO_ERR_BAD_JSON');
    const text = await system.app.inject({
      method: 'POST',
      url: '/api/groups',
      headers: { 'content-type': 'text/plain' },
      payload: 'hello',
    });
    expect(text.statusCode).toBe(415);
    expect(text.json().error.code).toBe('TODO_ERR_UNSUPPORTED_MEDIA_TYPE');
    const huge = await call(system, 'POST', '/api/groups', { name: 'x', user: 'u', padding: 'p'.repeat(70_000) });
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe('TODO_ERR_BODY_TOO_LARGE');

    expect(await messageCount(system)).toBe(before);
  });

  it('records no event for a change that changes nothing, and accepts an empty JSON body on DELETE', async () => {
    const before = await messageCount(system);
    expect((await call(system, 'PATCH', `/api/groups/${groupId}`, { name: 'Inputs', user: 'bob' })).status).toBe(200);
    expect((await call(system, 'PUT', `/api/tasks/${taskId}/status`, { status: 'pending', user: 'bob' })).status).toBe(200);
    expect((await call(system, 'PATCH', `/api/tasks/${taskId}`, { name: 'Task', user: 'bob' })).status).toBe(200);
    expect(await messageCount(system)).toBe(before);

    const updated = await call(system, 'PATCH', `/api/tasks/${taskId}`, { name: 'Renamed', description: 'new text', user: 'bob' });
    expect(updated.body).toMatchObject({ name: 'Renamed', description: 'new text' });
    const { rows } = await system.postbox.db.query<{ payload: any }>(
      'select payload from postbox.messages order by global_position desc limit 1',
    );
    expect(rows[0]?.payload.payload.changes).toBe('Task renamed from Task to Renamed; Description updated');

    const comments = await call(system, 'POST', `/api/tasks/${taskId}/comments`, { text: 'first', user: 'carol' });
    expect(comments.status).toBe(201);
    expect((await call(system, 'GET', `/api/tasks/${taskId}/comments`)).body).toEqual([comments.body]);

    const removed = await system.app.inject({
      method: 'DELETE',
      url: `/api/tasks/${taskId}?user=bob`,
      headers: { 'content-type': 'application/json' },
    });
    expect(removed.statusCode).toBe(200);
    expect(removed.json()).toEqual({ taskId });
  });
});
