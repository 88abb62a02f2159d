import { createLogger, Postbox, partitionOf, type RoutedMessage, Router } from 'postbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../../packages/postbox/test/support/postgres.js';
import { loadConfig } from '../src/config.js';
import { decodeHistoryEvent } from '../src/history/history-event.js';
import { historyRoute } from '../src/history/history-route.js';
import { toHistoryRow } from '../src/history/history-row.js';
import { writeHistory } from '../src/history/history-writer.js';
import { startSystem } from '../src/system.js';
import {
  backendNames,
  call,
  countRows,
  historyRows,
  openSystem,
  publishRaw,
  sampleEvent,
  type TestSystem,
  waitFor,
} from './support/system.js';

/** The README's "reset a consumer group to a time" statement, verbatim but for its parameters. */
const resetGroupToTime = `
update postbox.group_partitions
   set (checkpoint_transaction_id, checkpoint_position) = (
         select coalesce(last.transaction_id, '0'::xid8), coalesce(last.global_position, 0)
         from (select 1) as one
         left join lateral (
           select transaction_id, global_position from postbox.messages
           where topic = $2 and created_at < $3::timestamptz
           order by transaction_id desc, global_position desc
           limit 1
         ) as last on true),
       last_error = null, updated_at = now()
 where group_name = $1`;

async function groupStatus(system: TestSystem) {
  const [status] = await system.postbox.groupStatus(system.config.history.group);
  return status;
}

describe('history consumer on postgres', () => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await openSystem('postgres');
  });

  afterAll(async () => {
    await system?.cleanup();
  });

  it('stores a message delivered twice once: a group reset to a time re-reads, and adds no row', async () => {
    const before = new Date(Date.now() - 1_000);
    const group = await call(system, 'POST', '/api/groups', { name: 'Dedupe', user: 'alice' });
    for (let i = 0; i < 4; i++) await call(system, 'POST', `/api/groups/${group.body.groupId}/tasks`, { name: `t${i}`, user: 'bob' });
    await waitFor(async () => (await countRows(system)) === 5, 10_000, 'five rows');

    await system.router.stop();
    const reset = await system.postbox.db.query(resetGroupToTime, [system.config.history.group, system.config.history.topic, before]);
    expect(reset.rowCount).toBe(system.config.history.partitions);
    expect((await groupStatus(system))?.lagMessages).toBe(5);

    const restarted = new Router(system.postbox, { logger: system.logger }).addHandler(
      historyRoute(system.config.history, system.postbox.db),
    );
    await restarted.start();
    try {
      await waitFor(async () => (await groupStatus(system))?.lagMessages === 0, 10_000, 'the group to re-read everything');
      expect(await countRows(system)).toBe(5);
      expect(await countRows(system, 'todo_event_log_ids')).toBe(5);
    } finally {
      await restarted.stop();
    }
  });

  it('keeps one row when a batch holds the same message twice', async () => {
    const message = {
      id: 'kafka:todo-history-events:0:17',
      topic: 'todo-history-events',
      type: '',
      key: 'g',
      payload: { event: sampleEvent() as any, json: JSON.stringify(sampleEvent()) },
      headers: {},
      createdAt: new Date(),
      source: { kind: 'kafka' as const, partition: 0, offset: '17' },
    };
    const added = await system.postbox.transaction((tx) => writeHistory(tx, [toHistoryRow(message), toHistoryRow(message)]));
    expect(added).toBe(1);
    const [row] = await historyRows(system, 'message_id = $1', [message.id]);
    expect(row).toMatchObject({ source_partition: 0, source_offset: '17', entity_id: 'task-uuid-5' });
  });
});

describe('history consumer while the database refuses inserts', () => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await openSystem('postgres');
  });

  afterAll(async () => {
    await system?.cleanup();
  });

  it('loses nothing and stores nothing twice: the checkpoint waits until inserts work again', async () => {
    await system.postbox.db.query('alter table todo_event_logs rename to todo_event_logs_away');
    const group = await call(system, 'POST', '/api/groups', { name: 'Outage', user: 'alice' });
    expect(group.status).toBe(201);
    for (let i = 0; i < 9; i++) await call(system, 'POST', `/api/groups/${group.body.groupId}/tasks`, { name: `t${i}`, user: 'bob' });
    for (let i = 0; i < 10; i++) await publishRaw(system, sampleEvent({ payload: { entityId: `external-${i}`, taskId: `external-${i}` } }));

    await waitFor(async () => (await groupStatus(system))?.lastError != null, 10_000, 'the group to record the failure');
    const failing = await groupStatus(system);
    expect(failing?.lastError).toMatch(/todo_event_logs/);
    expect(failing?.lagMessages).toBe(20);
    const ready = await call(system, 'GET', '/health/ready');
    expect(ready.body.status).toBe('degraded');

    await system.postbox.db.query('alter table todo_event_logs_away rename to todo_event_logs');
    await waitFor(async () => (await groupStatus(system))?.lagMessages === 0, 20_000, 'the group to catch up');
    const rows = await historyRows(system);
    expect(rows).toHaveLength(20);
    expect(new Set(rows.map((row) => row.message_id)).size).toBe(20);
    expect(await system.postbox.deadLetters.list()).toEqual([]);
    expect((await groupStatus(system))?.lastError).toBeNull();
  });
});

describe.each(backendNames)('history writer on %s', (backend) => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await openSystem(backend);
  });

  afterAll(async () => {
    await system?.cleanup();
  });

  it('stores every text exactly as decoded, and a batch in its order', async () => {
    const awkward = ['say "hi"', 'back\\slash \\"', '{a,b}', 'NULL', ' padded ', 'comma, here', 'é😀 ünï', "it's"];
    const messages: RoutedMessage[] = awkward.map((text, i) => ({
      id: `awkward-${i}`,
      topic: 'todo-history-events',
      type: '',
      key: 'g',
      payload: sampleEvent({
        payload: {
          entityId: `t-${text}`,
          taskId: `t-${text}`,
          groupName: text,
          taskName: text,
          changes: text,
          user: text,
          workspace: text,
        },
      }),
      headers: {},
      createdAt: new Date(),
      source: { kind: 'log', transactionId: 1n, globalPosition: BigInt(i + 1) },
    }));
    messages.push({
      ...(messages[0] as RoutedMessage),
      id: 'no-names',
      payload: sampleEvent({ payload: { groupName: '', taskName: null, user: undefined } }),
    });
    const rows = messages.map((message) => toHistoryRow({ ...message, payload: decodeHistoryEvent(message, 65_536) }));
    expect(await system.postbox.transaction((tx) => writeHistory(tx, rows))).toBe(messages.length);
    const stored = await historyRows(system, "message_id like 'awkward-%' or message_id = 'no-names'");
    expect(stored.map((row) => row.message_id)).toEqual(messages.map((message) => message.id));
    expect(
      stored
        .slice(0, awkward.length)
        .map((row) => [row.entity_id, row.group_name, row.task_name, row.changes, row.user_name, row.workspace]),
    ).toEqual(awkward.map((text) => [`t-${text}`, text, text, text, text, text]));
    expect(stored.map((row) => row.event_data)).toEqual(messages.map((message) => message.payload));
    expect(stored.at(-1)).toMatchObject({
      group_name: null,
      task_name: null,
      user_name: null,
      source_partition: null,
      timestamp_fallback: false,
    });
    expect(await system.postbox.transaction((tx) => writeHistory(tx, rows))).toBe(0);
  });
});

describe('history consumer partitions', () => {
  it('splits the group by groupId, refuses a group made with another count until it is repartitioned, and stores nothing twice', async () => {
    const database = await createTestDatabase();
    const env = { DATABASE_URL: database.url, OUTBOX_INTERVAL: '100ms', OUTBOX_RETRY_DELAY: '20ms' };
    const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', name: 'history-partitions-test' });
    const group = loadConfig(env).history.group;
    try {
      // An existing database: its history group was created with one partition.
      const one = await startSystem(loadConfig({ ...env, HISTORY_PARTITIONS: '1' }), { logger });
      const groupIds: string[] = [];
      try {
        for (let g = 0; g < 8; g++) groupIds.push((await call(one, 'POST', '/api/groups', { name: `G${g}`, user: 'ann' })).body.groupId);
        await waitFor(async () => (await countRows(one)) === 8, 10_000, 'eight rows');
        expect((await one.postbox.groupStatus(group))[0]?.partitions).toHaveLength(1);
      } finally {
        await one.close();
      }

      const refused = await startSystem(loadConfig(env), { logger }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toMatchObject({
        code: 'POSTBOX_ERR_GROUP_PARTITIONS_MISMATCH',
        message: expect.stringContaining(`postbox groups repartition ${group} --partitions 4`),
      });

      // What `npx postbox groups repartition todo-consumer-group-go --partitions 4` does, with the app stopped.
      const admin = await Postbox.create({ databaseUrl: database.url, logger, migrate: 'check' });
      try {
        expect(await admin.repartitionGroup(group, 4)).toMatchObject({ group, from: 1, to: 4 });
      } finally {
        await admin.close();
      }

      const four = await startSystem(loadConfig(env), { logger });
      try {
        for (const groupId of groupIds) {
          for (let t = 0; t < 3; t++) await call(four, 'POST', `/api/groups/${groupId}/tasks`, { name: `T${t}`, user: 'bob' });
        }
        await waitFor(async () => (await countRows(four)) === 32, 15_000, 'thirty-two rows');
        const [status] = await four.postbox.groupStatus(group);
        expect(status?.partitions.map((partition) => partition.partition)).toEqual([0, 1, 2, 3]);
        expect(status?.members.map((member) => member.partitions)).toEqual([[0, 1, 2, 3]]);
        // The groups' events fell in more than one partition, and each group's history kept its order.
        expect(new Set(groupIds.map((groupId) => partitionOf(groupId, groupId, 4))).size).toBeGreaterThan(1);
        const rows = await historyRows(four);
        for (const groupId of groupIds) {
          expect(rows.filter((row) => row.group_id === groupId).map((row) => row.changes)).toEqual([
            `Group 'G${groupIds.indexOf(groupId)}' was created`,
            "Task 'T0' was created",
            "Task 'T1' was created",
            "Task 'T2' was created",
          ]);
        }
        expect(await countRows(four, 'todo_event_log_ids')).toBe(32);
      } finally {
        await four.close();
      }
    } finally {
      await database.drop();
    }
  });
});
