import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, openSystem, type TestSystem } from './support/system.js';

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
    expect(events[1]?.id).toBe(String(events[1]?.data.id));

    const replay = await fetch(`${base}/api/logs/stream?groupId=${groupId}`, { headers: { 'last-event-id': '0' } });
    const replayed = await readEvents(replay, 3);
    expect(replayed.map((e) => e.data.eventType)).toEqual(['created', 'updated', 'created']);
    const afterId = await fetch(`${base}/api/logs/stream?taskId=${task.body.taskId}&after=${events[0]?.id}`);
    expect((await readEvents(afterId, 1)).map((e) => e.data.changes)).toEqual(["Task 'Watch' was created"]);
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
