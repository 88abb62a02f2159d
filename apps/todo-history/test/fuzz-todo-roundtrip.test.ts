import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostileText, propertyRuns, textAround } from '../../../packages/postbox/test/support/properties.js';
import { backendNames, call, openSystem, type TestSystem } from './support/system.js';

const text = fc.oneof(
  { weight: 8, arbitrary: hostileText },
  { weight: 2, arbitrary: fc.constantFrom('\ufeffleading mark', 'trailing mark\ufeff', ' padded ', '\u0000', 'a\ud800') },
  { weight: 1, arbitrary: textAround(255) },
);

describe.each(backendNames)('todo API round trip on %s', (backend) => {
  let system: TestSystem;
  let groupId: string;

  beforeAll(async () => {
    system = await openSystem(backend);
    groupId = (await call(system, 'POST', '/api/groups', { name: 'Round trip', user: 'alice' })).body.groupId;
  });

  afterAll(async () => {
    await system?.cleanup();
  });

  it('gives back exactly what it accepted (names trimmed), and refuses the rest with 400 naming the field', async () => {
    let stored = 0;
    await fc.assert(
      fc.asyncProperty(text, text, text, async (name, description, user) => {
        const created = await call(system, 'POST', `/api/groups/${groupId}/tasks`, { name, description, user });
        if (created.status !== 201) {
          expect(created.status).toBe(400);
          expect(['name', 'description', 'user']).toContain(created.body.error.field);
          return;
        }
        const { tasks } = (await call(system, 'GET', '/api/groups')).body.find((group: { groupId: string }) => group.groupId === groupId);
        const task = tasks.find((candidate: { taskId: string }) => candidate.taskId === created.body.taskId);
        expect(task).toMatchObject({ name: name.trim(), description, createdBy: user.trim() });
        const comment = await call(system, 'POST', `/api/tasks/${task.taskId}/comments`, { text: description || 'x', user });
        if (comment.status === 201) {
          const [listed] = (await call(system, 'GET', `/api/tasks/${task.taskId}/comments`)).body;
          expect(listed.text).toBe((description || 'x').trim());
        } else {
          expect(comment.status).toBe(400);
        }
        stored++;
      }),
      propertyRuns(40),
    );
    expect(stored).toBeGreaterThan(0);
  });
});
