import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeHistory } from '../src/history/history-writer.js';
import {
  call,
  countRows,
  deferred,
  historyRowOf,
  openSystem,
  publishRaw,
  sampleEvent,
  type TestSystem,
  waitFor,
} from './support/system.js';

const eventTypes = ['created', 'updated', 'status_changed', 'commented', 'deleted'];
const users = ['alice', 'bob', 'carol'];
const base = Date.parse('2025-11-10T00:00:00Z');

interface Published {
  groupId: string;
  taskId: string | null;
  eventType: string;
  user: string;
  timestamp: string;
}

function event(p: Published) {
  return sampleEvent({
    eventType: p.eventType,
    timestamp: p.timestamp,
    payload: {
      entity: p.taskId ? 'Task' : 'Group',
      entityId: p.taskId ?? p.groupId,
      groupId: p.groupId,
      groupName: `name of ${p.groupId}`,
      taskId: p.taskId,
      taskName: p.taskId ? `name of ${p.taskId}` : null,
      user: p.user,
      timestamp: p.timestamp,
    },
  });
}

async function pageAll(system: TestSystem, url: string, between?: () => Promise<void>): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const separator = url.includes('?') ? '&' : '?';
    const page: { status: number; body: any } = await call(system, 'GET', cursor ? `${url}${separator}cursor=${cursor}` : url);
    expect(page.status, JSON.stringify(page.body)).toBe(200);
    items.push(...page.body.items);
    cursor = page.body.nextCursor;
    if (cursor && between) await between();
  } while (cursor);
  return items;
}

describe('history query API', () => {
  let system: TestSystem;
  const published: Published[] = [];
  let extra = 0;

  async function publish(p: Published): Promise<void> {
    published.push(p);
    await publishRaw(system, event(p), p.groupId);
  }

  async function settle(): Promise<void> {
    await waitFor(async () => (await countRows(system)) === published.length, 15_000, `${published.length} rows`);
  }

  beforeAll(async () => {
    system = await openSystem('postgres');
    for (let i = 0; i < 240; i++) {
      // Four in every twenty share the timestamp of an earlier event of their group, so pages must break ties by id.
      const step = i % 20 >= 16 ? i - 4 : i;
      await publish({
        groupId: `g${i % 4}`,
        taskId: i % 3 === 0 ? null : `t${i % 4}-${i % 3}`,
        eventType: eventTypes[i % eventTypes.length] as string,
        user: users[i % users.length] as string,
        timestamp: new Date(base + step * 17 * 60_000).toISOString(),
      });
    }
    await settle();
  });

  afterAll(async () => {
    await system?.cleanup();
  });

  it('pages a group newest first, stable while new rows arrive', async () => {
    const before = published.filter((p) => p.groupId === 'g1').length;
    const items = await pageAll(system, '/api/logs/group/g1?limit=7', async () => {
      for (let n = 0; n < 3; n++) {
        await publish({
          groupId: 'g1',
          taskId: null,
          eventType: 'updated',
          user: 'zed',
          timestamp: new Date(Date.now() + extra++ * 1000).toISOString(),
        });
      }
      await settle();
    });
    expect(items).toHaveLength(before);
    expect(new Set(items.map((item) => item.id)).size).toBe(before);
    expect(items.every((item) => item.user !== 'zed')).toBe(true);
    for (let i = 1; i < items.length; i++) {
      const [a, b] = [items[i - 1], items[i]];
      expect(a.timestamp > b.timestamp || (a.timestamp === b.timestamp && a.id > b.id), `order at ${i}`).toBe(true);
    }
    expect(items.some((item, i) => i > 0 && items[i - 1].timestamp === item.timestamp)).toBe(true);
  });

  it('filters by time range, event type and user, and pages a task', async () => {
    const from = '2025-11-10T10:00:00Z';
    const to = '2025-11-11T06:00:00.000Z';
    const expected = published.filter(
      (p) =>
        p.groupId === 'g2' &&
        p.timestamp >= '2025-11-10T10:00:00.000Z' &&
        p.timestamp < to &&
        p.eventType === 'commented' &&
        p.user === 'bob',
    );
    expect(expected.length).toBeGreaterThan(0);
    const items = await pageAll(system, `/api/logs/group/g2?from=${from}&to=${to}&eventType=commented&user=bob&limit=2`);
    expect(items.map((item) => item.timestamp).sort()).toEqual(expected.map((p) => p.timestamp).sort());
    expect(items.every((item) => item.eventType === 'commented' && item.user === 'bob')).toBe(true);

    const dayOnly = await pageAll(system, '/api/logs/group/g2?from=2025-11-11&limit=1000');
    expect(dayOnly).toHaveLength(published.filter((p) => p.groupId === 'g2' && p.timestamp >= '2025-11-11').length);

    const task = await pageAll(system, '/api/logs/task/t3-1?limit=3');
    expect(task).toHaveLength(published.filter((p) => p.taskId === 't3-1').length);
    expect(task.every((item) => item.taskId === 't3-1' && item.entity === 'Task' && item.entityId === 't3-1')).toBe(true);
  });

  it('summarises groups and tasks with counts and last activity, paging stable while rows arrive', async () => {
    for (let g = 10; g < 15; g++) {
      await publish({ groupId: `s${g}`, taskId: null, eventType: 'created', user: 'ann', timestamp: `2024-01-0${g - 9}T00:00:00.000Z` });
    }
    await settle();
    const counts = new Map<string, number>();
    for (const p of published) counts.set(p.groupId, (counts.get(p.groupId) ?? 0) + 1);
    const groups = await pageAll(system, '/api/logs/groups?limit=2', async () => {
      await publish({
        groupId: 's10',
        taskId: null,
        eventType: 'updated',
        user: 'ann',
        timestamp: new Date(Date.now() + extra++ * 1000).toISOString(),
      });
      await settle();
    });
    expect(groups.map((g) => g.groupId).sort()).toEqual([...counts.keys()].sort());
    for (const group of groups) expect(group.logCount, group.groupId).toBe(counts.get(group.groupId));
    for (let i = 1; i < groups.length; i++) expect(groups[i - 1].lastActivity >= groups[i].lastActivity).toBe(true);
    expect(groups.at(-1)).toEqual({ groupId: 's10', groupName: 'name of s10', logCount: 1, lastActivity: '2024-01-01T00:00:00.000Z' });

    const tasks = await pageAll(system, '/api/logs/group/g0/tasks?limit=1');
    const expected = new Map<string, string>();
    for (const p of published)
      if (p.groupId === 'g0' && p.taskId && (expected.get(p.taskId) ?? '') < p.timestamp) expected.set(p.taskId, p.timestamp);
    expect(tasks.map((t) => [t.taskId, t.lastActivity])).toEqual([...expected.entries()].sort((a, b) => (a[1] < b[1] ? 1 : -1)));
    const filtered = await pageAll(system, '/api/logs/groups?eventType=deleted&user=alice');
    const deletedByAlice = new Set(published.filter((p) => p.eventType === 'deleted' && p.user === 'alice').map((p) => p.groupId));
    expect(new Set(filtered.map((g) => g.groupId))).toEqual(deletedByAlice);
  });

  it('answers 400 naming the parameter for bad parameters', async () => {
    const groups = await call(system, 'GET', '/api/logs/groups?limit=1');
    const groupsCursor: string = groups.body.nextCursor;
    const cases: [string, RegExp][] = [
      ['/api/logs/group/g1?limit=0', /parameter limit must be an integer from 1 to 1000/],
      ['/api/logs/group/g1?limit=5000', /parameter limit must be an integer from 1 to 1000/],
      ['/api/logs/group/g1?limit=ten', /parameter limit/],
      ['/api/logs/group/g1?limit=1&limit=2', /parameter limit/],
      ['/api/logs/group/g1?from=garbage', /parameter from must be an RFC 3339 time/],
      ['/api/logs/task/t1-1?to=2025-13-01T00:00:00Z', /parameter to must be an RFC 3339 time/],
      ['/api/logs/group/g1?from=2025-11-11&to=2025-11-10', /parameter from must be earlier than parameter to/],
      ['/api/logs/group/g1?cursor=garbage', /parameter cursor is not a cursor of this listing/],
      ['/api/logs/group/g1?cursor=eyJ2IjoxfQ', /parameter cursor/],
      [`/api/logs/group/g1?cursor=${groupsCursor}`, /parameter cursor is not a cursor of this listing/],
      ['/api/logs/groups?eventType=archived', /parameter eventType must be one of "created"/],
      ['/api/logs/group/g1/tasks?user=', /parameter user must not be empty/],
      [`/api/logs/group/${'x'.repeat(101)}`, /parameter groupId must be at most 100 characters/],
    ];
    for (const [url, message] of cases) {
      const answer = await call(system, 'GET', url);
      expect(answer.status, url).toBe(400);
      expect(answer.body.error.code, url).toBe('TODO_ERR_BAD_REQUEST');
      expect(answer.body.error.message, url).toMatch(message);
    }
    expect(groupsCursor).toMatch(/^[A-Za-z0-9_-]+$/);
    const unknown = await call(system, 'GET', '/api/logs/group/nobody');
    expect(unknown.body).toEqual({ items: [], nextCursor: null });
  });

  // Last: it stores rows outside `published`.
  it('pages summaries over the rows of their first page, even when an older transaction commits in between', async () => {
    const row = (groupId: string, timestamp: string) =>
      historyRowOf(event({ groupId, taskId: null, eventType: 'updated', user: 'latecomer', timestamp }), groupId);
    const store = (groupId: string, timestamp: string) => system.postbox.transaction((tx) => writeHistory(tx, [row(groupId, timestamp)]));
    await store('z1', '2024-06-01T00:00:00Z');
    await store('z2', '2024-06-02T00:00:00Z');
    await store('z3', '2024-06-03T00:00:00Z');
    // An older transaction stores a row of z0 (a lower id, the oldest activity: the last page)...
    const olderWrote = deferred();
    const commitOlder = deferred();
    const older = system.postbox.transaction(async (tx) => {
      await writeHistory(tx, [row('z0', '2024-05-01T00:00:00Z')]);
      olderWrote.resolve();
      await commitOlder.promise;
    });
    await olderWrote.promise;
    // ...a newer one stores a row of z3 (a higher id) and commits; the first page is read...
    await store('z3', '2024-06-04T00:00:00Z');
    const first = await call(system, 'GET', '/api/logs/groups?user=latecomer&limit=1');
    expect(first.body.items.map((g: any) => [g.groupId, g.logCount])).toEqual([['z3', 2]]);
    // ...and only then does the older one commit: z0 did not exist for the first page, nor for the next.
    commitOlder.resolve();
    await older;
    const rest: any[] = [];
    for (let cursor: string | null = first.body.nextCursor; cursor; ) {
      const page = await call(system, 'GET', `/api/logs/groups?user=latecomer&limit=1&cursor=${cursor}`);
      expect(page.status, JSON.stringify(page.body)).toBe(200);
      rest.push(...page.body.items);
      cursor = page.body.nextCursor;
    }
    expect(rest.map((g) => [g.groupId, g.logCount])).toEqual([
      ['z2', 1],
      ['z1', 1],
    ]);
    const now = await pageAll(system, '/api/logs/groups?user=latecomer&limit=1');
    expect(now.map((g) => g.groupId)).toEqual(['z3', 'z2', 'z1', 'z0']);
  });
});
