import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeHistory } from '../src/history/history-writer.js';
import { call, deferred, delay, historyRowOf, openSystem, sampleEvent, type TestSystem } from './support/system.js';

interface FeedEvent {
  id: string;
  event: string;
  data: any;
}

/** Reads server-sent events from a live response until `count` arrived or the stream ends. */
async function readEvents(response: Response, count: number, timeoutMs = 10_000): Promise<FeedEvent[]> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const events: FeedEvent[] = [];
  let buffer = '';
  const timer = setTimeout(() => void reader.cancel(), timeoutMs);
  try {
    while (events.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = Object.fromEntries(
          block
            .split('\n')
            .filter((line) => !line.startsWith(':') && line.includes(':'))
            .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]),
        );
        if (fields.event) events.push({ id: fields.id ?? '', event: fields.event, data: JSON.parse(fields.data ?? 'null') });
        end = buffer.indexOf('\n\n');
      }
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => undefined);
  }
  return events;
}

describe('live feed on pglite', () => {
  let system: TestSystem;
  let base: string;

  beforeAll(async () => {
    system = await openSystem('pglite', { PORT: '0' });
    base = await system.listen();
  });

  afterAll(async () => {
    await system?.cleanup();
  });

  it('pushes new history rows of the chosen group as server-sent events, and catches up after an id', async () => {
    const first = await call(system, 'POST', '/api/groups', { name: 'Streamed', user: 'alice' });
    const groupId: string = first.body.groupId;
    const stream = await fetch(`${base}/api/logs/stream?groupId=${groupId}`);
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reading = readEvents(stream, 2);
    await call(system, 'POST', '/api/groups', { name: 'Elsewhere', user: 'bob' });
    await call(system, 'PATCH', `/api/groups/${groupId}`, { name: 'Streamed live', user: 'alice' });
    const task = await call(system, 'POST', `/api/groups/${groupId}/tasks`, { name: 'Watch', user: 'alice' });
    const events = await reading;
    expect(events.map((e) => [e.event, e.data.changes])).toEqual([
      ['log', 'Group renamed from Streamed to Streamed live'],
      ['log', "Task 'Watch' was created"],
    ]);
    expect(events[1]?.data).toMatchObject({ groupId, taskId: task.body.taskId, entity: 'Task', eventType: 'created' });
    // The event id is the feed cursor: the row's transaction and its id.
    expect(events[1]?.id).toMatch(new RegExp(`^[1-9]\\d*\\.${events[1]?.data.id}$`));

    const replay = await fetch(`${base}/api/logs/stream?groupId=${groupId}`, { headers: { 'last-event-id': '0' } });
    const replayed = await readEvents(replay, 3);
    expect(replayed.map((e) => e.data.eventType)).toEqual(['created', 'updated', 'created']);
    const afterId = await fetch(`${base}/api/logs/stream?taskId=${task.body.taskId}&after=${events[0]?.id}`);
    expect((await readEvents(afterId, 1)).map((e) => e.data.changes)).toEqual(["Task 'Watch' was created"]);
  });

  it('refuses a cursor that is not one of its own with 400, in the API error format', async () => {
    const bad = [
      'abc',
      '42',
      '1.2.3',
      '01.2',
      '1.02',
      '1.',
      '.1',
      '-1.2',
      '1.2 ',
      '1e3.1',
      '18446744073709551616.1',
      '1.9223372036854775808',
    ];
    for (const after of bad) {
      const answer = await call(system, 'GET', `/api/logs/stream?after=${encodeURIComponent(after)}`);
      expect(answer.status, after).toBe(400);
      expect(answer.body.error, after).toMatchObject({ code: 'TODO_ERR_BAD_REQUEST', field: 'after' });
      expect(answer.body.error.message, after).toMatch(/parameter after \(or the Last-Event-ID header\)/);
    }
    const header = await call(system, 'GET', '/api/logs/stream', undefined, { 'last-event-id': '7' });
    expect(header.status).toBe(400);
    expect(header.body.error.field).toBe('after');
  });

  it('refuses a bad after id with 400, and ends open streams on shutdown', async () => {
    expect((await call(system, 'GET', '/api/logs/stream?after=abc')).status).toBe(400);
    const open = await fetch(`${base}/api/logs/stream`);
    const reading = readEvents(open, 1, 20_000);
    const started = Date.now();
    expect(await system.close()).toBe(true);
    expect(await reading).toEqual([]);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

/** One history row of a group, as the consumer would store it. */
const historyRow = (groupId: string, changes: string) =>
  historyRowOf(sampleEvent({ eventType: 'commented', payload: { groupId, changes } }), groupId);

describe('live feed on postgres, with writers committing out of order', () => {
  let system: TestSystem;
  let base: string;

  beforeAll(async () => {
    system = await openSystem('postgres', { PORT: '0' });
    base = await system.listen();
  });

  afterAll(async () => {
    await system?.cleanup();
  });

  it('pushes a row that an older transaction commits after a newer one, though its id is lower', async () => {
    const groupId = `late-${randomUUID()}`;
    const stream = await fetch(`${base}/api/logs/stream?groupId=${groupId}`);
    expect(stream.status).toBe(200);
    const reading = readEvents(stream, 2, 15_000);

    // Two writers on two connections: the older transaction stores its row first (the lower id)...
    const olderWrote = deferred<string>();
    const commitOlder = deferred();
    const older = system.postbox.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: string }>('select pg_current_xact_id()::text as id');
      await writeHistory(tx, [historyRow(groupId, 'stored first, committed last')]);
      olderWrote.resolve(rows[0]?.id as string);
      await commitOlder.promise;
    });
    const olderTransaction = await olderWrote.promise;
    // ...the newer one stores the next id and commits, and its NOTIFY wakes the feed...
    const newerTransaction = await system.postbox.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: string }>('select pg_current_xact_id()::text as id');
      await writeHistory(tx, [historyRow(groupId, 'stored last, committed first')]);
      return rows[0]?.id as string;
    });
    expect(BigInt(newerTransaction)).toBeGreaterThan(BigInt(olderTransaction));
    await delay(500);
    // ...and only then does the older one commit. A feed that read "id greater than the last
    // pushed" would have pushed the newer row already and would never push the older one.
    commitOlder.resolve();
    await older;

    const events = await reading;
    expect(events.map((event) => event.data.changes)).toEqual(['stored first, committed last', 'stored last, committed first']);
    const [first, second] = events.map((event) => event.data.id as number);
    expect(first).toBeLessThan(second as number);
    expect(events.map((event) => event.id)).toEqual([`${olderTransaction}.${first}`, `${newerTransaction}.${second}`]);

    // A client that reconnects with the last event id gets nothing twice; one with the first gets the second.
    const resumed = await fetch(`${base}/api/logs/stream?groupId=${groupId}`, { headers: { 'last-event-id': events[0]?.id ?? '' } });
    expect((await readEvents(resumed, 1)).map((event) => event.id)).toEqual([events[1]?.id]);
    const caughtUp = await fetch(`${base}/api/logs/stream?groupId=${groupId}&after=${events[1]?.id}`);
    expect(await readEvents(caughtUp, 1, 1_500)).toEqual([]);
  });
});
