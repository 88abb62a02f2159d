import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeHistoryEvent } from '../src/history/history-event.js';
import { toHistoryRow } from '../src/history/history-row.js';
import { writeHistory } from '../src/history/history-writer.js';
import { maintainPartitions } from '../src/history/partition-maintenance.js';
import { backendNames, openSystem, sampleEvent, type TestSystem } from './support/system.js';

const day = (offsetDays: number) => new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
const partitionName = (isoDay: string) => `todo_event_logs_${isoDay.replaceAll('-', '')}`;

describe.each(backendNames)('history partitions on %s', (backend) => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await openSystem(backend);
  });

  afterAll(async () => {
    await system?.cleanup();
  });

  async function store(timestamp: string): Promise<string> {
    const id = randomUUID();
    const message = {
      id,
      topic: 'todo-history-events',
      type: 'todo.task.created',
      key: 'g',
      payload: sampleEvent({ timestamp }),
      headers: {},
      createdAt: new Date(),
      source: { kind: 'log' as const, transactionId: 1n, globalPosition: 1n },
    };
    const row = toHistoryRow({ ...message, payload: decodeHistoryEvent(message, 65_536) });
    await system.postbox.transaction((tx) => writeHistory(tx, [row]));
    return id;
  }

  async function partitionOf(messageId: string): Promise<string> {
    const { rows } = await system.postbox.db.query<{ name: string }>(
      'select tableoid::regclass::text as name from todo_event_logs where message_id = $1',
      [messageId],
    );
    return rows[0]?.name as string;
  }

  async function partitions(): Promise<string[]> {
    const { rows } = await system.postbox.db.query<{ name: string }>(
      `select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
       where i.inhparent = 'todo_event_logs'::regclass order by 1`,
    );
    return rows.map((row) => row.name);
  }

  it('is partitioned by day, ready from today through the days ahead, with a default partition', async () => {
    const storage = await system.postbox.db.query<{ s: string }>('select todo_history.event_log_storage() as s');
    expect(storage.rows[0]?.s).toBe('partitioned');
    const names = await partitions();
    for (let offset = 0; offset <= 7; offset++) expect(names).toContain(partitionName(day(offset)));
    expect(names).toContain('todo_event_logs_default');
    expect(await partitionOf(await store(`${day(0)}T12:00:00Z`))).toBe(partitionName(day(0)));
    expect(await partitionOf(await store('2099-05-01T00:00:00Z'))).toBe('todo_event_logs_default');
    expect((await maintainPartitions(system.postbox.db, { daysAhead: 7, retentionDays: undefined })).created).toBe(0);
  });

  it('leaves a day whose rows sit in the default partition there, and still inserts', async () => {
    const early = await store('2030-01-01T08:00:00Z');
    const created = await system.postbox.db.query<{ n: number }>(`select todo_history.ensure_event_log_partitions(1, '2030-01-01') as n`);
    expect(Number(created.rows[0]?.n)).toBe(1);
    const names = await partitions();
    expect(names).not.toContain('todo_event_logs_20300101');
    expect(names).toContain('todo_event_logs_20300102');
    expect(await partitionOf(early)).toBe('todo_event_logs_default');
    expect(await partitionOf(await store('2030-01-01T09:00:00Z'))).toBe('todo_event_logs_default');
    expect(await partitionOf(await store('2030-01-02T09:00:00Z'))).toBe('todo_event_logs_20300102');
  });

  it('drops whole partitions older than the retention period, and old rows of the default partition', async () => {
    await system.postbox.db.query('select todo_history.ensure_event_log_partitions(2, $1::date)', [day(-40)]);
    const old = await store(`${day(-39)}T10:00:00Z`);
    expect(await partitionOf(old)).toBe(partitionName(day(-39)));
    const ancient = await store('1990-06-01T00:00:00Z');
    const recent = await store(`${day(-2)}T00:00:00Z`);
    expect(await partitionOf(recent)).toBe('todo_event_logs_default');

    const result = await maintainPartitions(system.postbox.db, { daysAhead: 7, retentionDays: 30 });
    expect(result.dropped).toBe(3);
    const names = await partitions();
    for (const offset of [-40, -39, -38]) expect(names).not.toContain(partitionName(day(offset)));
    expect(names).toContain(partitionName(day(0)));
    expect(await partitionOf(old)).toBeUndefined();
    expect(await partitionOf(ancient)).toBeUndefined();
    expect(await partitionOf(recent)).toBe('todo_event_logs_default');
  });
});
