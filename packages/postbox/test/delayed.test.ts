import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPostboxError } from '../src/errors/postbox-error.js';
import { messageBuilder } from '../src/outbox/message-builder.js';
import { Postbox } from '../src/postbox.js';
import type { Executor } from '../src/sql/database.js';
import { backends, type TestPostbox } from './support/backends.js';
import { exited, spawnTs, waitForLine } from './support/child.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { delay, waitFor } from './support/wait.js';

/** The database's clock: due times and handling times are compared on it, never on the test's. */
async function databaseNow(db: Executor): Promise<Date> {
  const { rows } = await db.query<{ now: number }>('select (extract(epoch from clock_timestamp()) * 1000)::float8 as now');
  return new Date((rows[0] as { now: number }).now);
}

interface LoggedRow {
  message_id: string;
  key: string | null;
  payload: unknown;
  created_at: number;
}

/** A topic's messages in the order readers see them. */
async function logged(db: Executor, topic: string): Promise<LoggedRow[]> {
  const { rows } = await db.query<LoggedRow>(
    `select message_id, key, payload, (extract(epoch from created_at) * 1000)::float8 as created_at
     from postbox.messages where topic = $1 order by transaction_id, global_position`,
    [topic],
  );
  return rows;
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(isPostboxError(error), String(error)).toBe(true);
  expect((error as { code: string }).code).toBe(code);
}

describe.each(backends)('delayed messages on $name', (backend) => {
  let test: TestPostbox;
  let postbox: Postbox;

  beforeAll(async () => {
    test = await backend.open({ timekeeper: 'on' });
    postbox = test.postbox;
    await postbox.db.query(
      'create table handled (message_id uuid not null, due_at timestamptz not null, handled_at timestamptz not null default clock_timestamp())',
    );
    const consumer = postbox.consumer({
      group: 'timed-handler',
      topics: ['timed'],
      transactional: true,
      pollIntervalMs: 50,
      handleBatch: async (messages, context) => {
        for (const message of messages) {
          await context.tx?.query('insert into handled (message_id, due_at) values ($1, $2)', [
            message.id,
            (message.payload as { due: string }).due,
          ]);
        }
      },
    });
    await consumer.start();
    await waitFor(() => consumer.state === 'active', 20_000, 'the consumer to hold its group');
  });
  afterAll(async () => {
    await test.cleanup();
  });

  it('delivers each message no earlier than its time, by the database clock, and soon after it', async () => {
    const base = await databaseNow(postbox.db);
    const ids = await postbox.transaction(async (tx) => {
      const written = await postbox.enqueue(tx, [
        ...Array.from({ length: 8 }, (_, i) => ({
          topic: 'timed',
          type: 'at',
          key: `at-${i % 3}`,
          deliverAt: new Date(base.getTime() + 600 + i * 150),
          payload: { due: new Date(base.getTime() + 600 + i * 150).toISOString() },
        })),
        ...Array.from({ length: 6 }, (_, i) => ({ topic: 'timed', type: 'delay', key: `delay-${i}`, delayMs: 700 + i * 120, payload: {} })),
      ]);
      // A delay counts from the server's clock as the row is written: read the due time the server gave it.
      const { rows } = await tx.query<{ message_id: string; due_at: string }>(
        `select message_id, to_json(due_at) #>> '{}' as due_at from postbox.scheduled_messages where type = 'delay'`,
      );
      for (const row of rows) {
        await tx.query(`update postbox.scheduled_messages set payload = jsonb_build_object('due', $2::text) where message_id = $1`, [
          row.message_id,
          row.due_at,
        ]);
      }
      return written;
    });
    expect(ids).toHaveLength(14);
    await waitFor(async () => (await postbox.db.query('select 1 from handled')).rows.length === 14, 20_000, 'every message handled');

    const { rows } = await postbox.db.query<{
      message_id: string;
      early_ms: number;
      late_ms: number;
      logged_early_ms: number;
      moved_late_ms: number;
    }>(
      `select h.message_id, (extract(epoch from m.created_at - h.due_at) * 1000)::float8 as moved_late_ms,
              (extract(epoch from h.due_at - h.handled_at) * 1000)::float8 as early_ms,
              (extract(epoch from h.handled_at - h.due_at) * 1000)::float8 as late_ms,
              (extract(epoch from h.due_at - m.created_at) * 1000)::float8 as logged_early_ms
       from handled h join postbox.messages m on m.message_id = h.message_id
       order by late_ms`,
    );
    expect(new Set(rows.map((row) => row.message_id))).toEqual(new Set(ids));
    for (const row of rows) {
      expect(row.early_ms, `message ${row.message_id} handled before its time`).toBeLessThanOrEqual(0);
      expect(row.logged_early_ms, `message ${row.message_id} entered the log before its time`).toBeLessThanOrEqual(0);
    }
    const lateness = rows.map((row) => row.late_ms);
    const moved = rows.map((row) => row.moved_late_ms).sort((a, b) => a - b);
    const median = (values: number[]) => values[Math.floor(values.length / 2)]?.toFixed(0);
    // Due to moved: the timekeeper's wake-up and move; due to handled adds the consumer's NOTIFY, read and commit.
    console.info(
      `${backend.name}: due to moved p50 ${median(moved)} ms, max ${moved.at(-1)?.toFixed(0)} ms; ` +
        `due to handled p50 ${median(lateness)} ms, max ${lateness.at(-1)?.toFixed(0)} ms`,
    );
    expect(Math.max(...lateness)).toBeLessThan(2_000);
  });

  it('keeps nothing when the writing transaction rolls back', async () => {
    const failure = new Error('business rule failed');
    await expect(
      postbox.transaction(async (tx) => {
        await postbox.enqueue(tx, { topic: 'rolled-back', type: 't', payload: 1, delayMs: 0 });
        await postbox.enqueue(tx, { topic: 'rolled-back', type: 't', payload: 2, deliverAt: new Date(Date.now() + 60_000) });
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await postbox.listScheduled({ topic: 'rolled-back' })).toEqual([]);
    await delay(300);
    expect(await logged(postbox.db, 'rolled-back')).toEqual([]);
  });

  it('never delivers a cancelled message, and says when a message is no longer waiting', async () => {
    const base = await databaseNow(postbox.db);
    const ids = await postbox.publish(
      Array.from({ length: 6 }, (_, i) => ({ topic: 'cancel', type: 't', payload: i, deliverAt: new Date(base.getTime() + 2_000) })),
    );
    const [kept, cancelled, cancelledInTx, rolledBack, ...rest] = ids as [string, string, string, string, ...string[]];
    expect(await postbox.cancelScheduled(cancelled)).toBe(true);
    expect(await postbox.cancelScheduled(cancelled)).toBe(false);
    await postbox.transaction(async (tx) => {
      expect(await postbox.cancelScheduled(cancelledInTx, tx)).toBe(true);
    });
    // A cancel that rolls back with its transaction leaves the message waiting.
    await postbox
      .transaction(async (tx) => {
        expect(await postbox.cancelScheduled(rolledBack, tx)).toBe(true);
        throw new Error('changed my mind');
      })
      .catch(() => undefined);
    await waitFor(async () => (await logged(postbox.db, 'cancel')).length === 4, 10_000, 'the messages not cancelled');
    await delay(500);
    const delivered = (await logged(postbox.db, 'cancel')).map((row) => row.message_id).sort();
    expect(delivered).toEqual([kept, rolledBack, ...rest].sort());
    expect(await postbox.cancelScheduled(kept)).toBe(false);
    await expectCode(postbox.cancelScheduled('not-a-uuid'), 'POSTBOX_ERR_BAD_OPTION');
  });

  it('enters the log when it falls due: after what was committed before, and in writing order at one time', async () => {
    const base = await databaseNow(postbox.db);
    const at = new Date(base.getTime() + 2_000);
    const [first] = await postbox.publish({ topic: 'order', type: 'later', key: 'k', payload: 'delayed first', deliverAt: at });
    for (let i = 0; i < 3; i++) {
      await postbox.publish({ topic: 'order', type: 'later', key: 'k', payload: `same time ${i}`, deliverAt: at });
    }
    await postbox.publish({ topic: 'order', type: 'now', key: 'k', payload: 'immediate' });
    await postbox.publish({
      topic: 'order',
      type: 'later',
      key: 'k',
      payload: 'earlier time',
      deliverAt: new Date(base.getTime() + 1_500),
    });
    await waitFor(async () => (await logged(postbox.db, 'order')).length === 6, 10_000, 'all six in the log');
    const order = (await logged(postbox.db, 'order')).map((row) => row.payload);
    expect(order).toEqual(['immediate', 'earlier time', 'delayed first', 'same time 0', 'same time 1', 'same time 2']);
    expect((await logged(postbox.db, 'order'))[2]?.message_id).toBe(first);
  });

  it('refuses bad times and taken ids with typed errors, writing nothing', async () => {
    const message = { topic: 'bad-time', type: 't', payload: 1 };
    await expectCode(postbox.publish({ ...message, deliverAt: new Date(), delayMs: 5 }), 'POSTBOX_ERR_BAD_DELIVERY_TIME');
    await expectCode(postbox.publish({ ...message, deliverAt: new Date('not a date') }), 'POSTBOX_ERR_BAD_DELIVERY_TIME');
    await expectCode(postbox.publish({ ...message, deliverAt: '2030-01-01' as unknown as Date }), 'POSTBOX_ERR_BAD_DELIVERY_TIME');
    await expectCode(postbox.publish({ ...message, deliverAt: new Date('+020000-01-01T00:00:00Z') }), 'POSTBOX_ERR_BAD_DELIVERY_TIME');
    await expectCode(postbox.publish({ ...message, delayMs: -1 }), 'POSTBOX_ERR_BAD_DELIVERY_TIME');
    await expectCode(postbox.publish({ ...message, delayMs: Number.NaN }), 'POSTBOX_ERR_BAD_DELIVERY_TIME');
    await expectCode(postbox.publish({ ...message, delayMs: Number.POSITIVE_INFINITY }), 'POSTBOX_ERR_BAD_DELIVERY_TIME');
    // One bad message in a batch: the good ones are not written either.
    await expectCode(
      postbox.publish([
        { ...message, delayMs: 60_000 },
        { ...message, delayMs: -5 },
      ]),
      'POSTBOX_ERR_BAD_DELIVERY_TIME',
    );
    expect(await postbox.listScheduled({ topic: 'bad-time' })).toEqual([]);

    const [inLog] = await postbox.publish({ topic: 'bad-time', type: 't', payload: 'now' });
    await expectCode(postbox.publish({ ...message, id: inLog, delayMs: 60_000 }), 'POSTBOX_ERR_DUPLICATE_ID');
    const [waiting] = await postbox.publish({ ...message, delayMs: 60_000 });
    await expectCode(postbox.publish({ ...message, id: waiting, delayMs: 60_000 }), 'POSTBOX_ERR_DUPLICATE_ID');
    expect((await postbox.listScheduled({ topic: 'bad-time' })).map((m) => m.id)).toEqual([waiting]);
    expect(await postbox.cancelScheduled(waiting as string)).toBe(true);
  });

  it('takes the builder form and the SQL form, postbox.publish_at, with the same rules', async () => {
    const base = await databaseNow(postbox.db);
    const built = messageBuilder('built', 'b')
      .topic('forms')
      .payload({ n: 1 })
      .deliverAt(new Date(base.getTime() + 300))
      .build();
    const [builtId] = await postbox.publish(built);
    const { rows } = await postbox.db.query<{ id: string }>(
      `select postbox.publish_at('forms', 'from-sql', '{"n": 2}'::jsonb, now() + interval '300 milliseconds', 'b') as id`,
    );
    await expect(postbox.db.query(`select postbox.publish_at('forms', 't', '1'::jsonb, 'infinity')`)).rejects.toThrow(
      /POSTBOX_ERR_BAD_DELIVERY_TIME/,
    );
    await expect(postbox.db.query(`select postbox.publish_at('forms', 't', '1'::jsonb, null)`)).rejects.toThrow(
      /POSTBOX_ERR_BAD_DELIVERY_TIME/,
    );
    await expect(postbox.db.query(`select postbox.publish_at('', 't', '1'::jsonb, now())`)).rejects.toThrow(/POSTBOX_ERR_EMPTY_TOPIC/);
    expect((await postbox.listScheduled({ topic: 'forms' })).map((m) => m.type)).toEqual(['built', 'from-sql']);
    await waitFor(async () => (await logged(postbox.db, 'forms')).length === 2, 10_000, 'both forms delivered');
    expect((await logged(postbox.db, 'forms')).map((row) => row.message_id)).toEqual([builtId, rows[0]?.id]);
  });

  it('lists waiting messages by topic, key and due time, the soonest first', async () => {
    const base = await databaseNow(postbox.db);
    const hour = 3_600_000;
    await postbox.publish([
      { topic: 'listed', type: 't', key: 'a', payload: 1, deliverAt: new Date(base.getTime() + 3 * hour) },
      { topic: 'listed', type: 't', key: 'b', payload: 2, deliverAt: new Date(base.getTime() + hour) },
      { topic: 'listed', type: 't', key: 'a', payload: 3, deliverAt: new Date(base.getTime() + 2 * hour) },
    ]);
    expect((await postbox.listScheduled({ topic: 'listed' })).map((m) => m.payload)).toEqual([2, 3, 1]);
    expect((await postbox.listScheduled({ topic: 'listed', key: 'a' })).map((m) => m.payload)).toEqual([3, 1]);
    expect(
      (await postbox.listScheduled({ topic: 'listed', dueBefore: new Date(base.getTime() + 2.5 * hour) })).map((m) => m.payload),
    ).toEqual([2, 3]);
    expect((await postbox.listScheduled({ topic: 'listed', limit: 1 })).map((m) => m.payload)).toEqual([2]);
    const status = await postbox.timeStatus();
    expect(status.scheduledMessages).toBeGreaterThanOrEqual(3);
    expect(status.timekeeper?.owner).toBe(postbox.timekeeper?.owner);
    await expectCode(postbox.listScheduled({ limit: 0 }), 'POSTBOX_ERR_BAD_OPTION');
  });

  it('leaves waiting messages to the timekeeper when retention runs, and moved ones count from when they moved', async () => {
    const [id] = await postbox.publish({ topic: 'kept', type: 't', payload: 1, delayMs: 800 });
    // Retention of everything older than a millisecond: the waiting message is not in the log yet.
    await delay(20);
    await postbox.applyRetention({ olderThanMs: 1, topics: ['kept'] });
    expect((await postbox.listScheduled({ topic: 'kept' })).map((m) => m.id)).toEqual([id]);
    await waitFor(async () => (await logged(postbox.db, 'kept')).length === 1, 10_000, 'the message moved');
    // Moved with a created_at of the move: retention of an hour keeps it.
    await postbox.applyRetention({ olderThanMs: 3_600_000, topics: ['kept'] });
    expect((await logged(postbox.db, 'kept')).map((row) => row.message_id)).toEqual([id]);
  });
});

describe('the timekeeper across processes (PostgreSQL)', () => {
  let database: TestDatabase;
  let postbox: Postbox;

  beforeAll(async () => {
    database = await createTestDatabase();
    postbox = await Postbox.create({ databaseUrl: database.url, timekeeper: 'off' });
  });
  afterAll(async () => {
    await postbox.close(2_000);
    await database.drop();
  });

  async function count(topic: string): Promise<{ total: number; distinct: number }> {
    const { rows } = await postbox.db.query<{ total: number; distinct: number }>(
      'select count(*)::int as total, count(distinct message_id)::int as distinct from postbox.messages where topic = $1',
      [topic],
    );
    return rows[0] as { total: number; distinct: number };
  }

  async function scheduleDueNow(topic: string, total: number): Promise<void> {
    const batch = 5_000;
    for (let start = 0; start < total; start += batch) {
      await postbox.publish(
        Array.from({ length: Math.min(batch, total - start) }, (_, i) => ({
          topic,
          type: 't',
          key: `k${(start + i) % 50}`,
          payload: start + i,
          delayMs: 0,
        })),
      );
    }
  }

  it('moves a burst of 100,000 messages due at one moment completely, each once, in a few seconds', { timeout: 180_000 }, async () => {
    const total = 100_000;
    await scheduleDueNow('burst', total);
    const keeper = await Postbox.create({ databaseUrl: database.url, timekeeper: 'on' });
    const started = Date.now();
    try {
      await waitFor(async () => (await count('burst')).total >= total, 90_000, 'the burst moved');
      const seconds = (Date.now() - started) / 1_000;
      console.info(`burst of ${total}: moved in ${seconds.toFixed(1)} s (${Math.round(total / seconds)} msg/s)`);
    } finally {
      await keeper.close();
    }
    expect(await count('burst')).toEqual({ total, distinct: total });
    expect(await postbox.listScheduled({ topic: 'burst' })).toEqual([]);
    // In due order, and at one due time in writing order: the payloads count up.
    const { rows } = await postbox.db.query<{ out_of_order: number }>(
      `select count(*)::int as out_of_order from (
         select payload::int - lag(payload::int) over (order by transaction_id, global_position) as step from postbox.messages where topic = 'burst'
       ) s where step <> 1`,
    );
    expect(rows[0]?.out_of_order).toBe(0);
  });

  it('loses and doubles nothing when the moving process is killed in the middle of a move', async () => {
    const total = 6_000;
    await scheduleDueNow('crash', total);
    const child = spawnTs('fixtures/timekeeper-process.ts', { DATABASE_URL: database.url, OWNER: 'doomed', MOVE_BATCH_SIZE: '200' });
    const blocker = new pg.Client({ connectionString: database.url });
    await blocker.connect();
    try {
      await waitForLine(child, 'active');
      await waitFor(async () => (await count('crash')).total >= 1_000, 20_000, 'some batches moved');
      // Hold the log still: the next move deletes its batch, then waits to append it, uncommitted.
      await blocker.query('begin');
      await blocker.query('lock table postbox.messages in share mode');
      await waitFor(
        async () => {
          const { rows } = await postbox.db.query(
            `select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like '%move_due_messages%'`,
          );
          return rows.length === 1;
        },
        20_000,
        'a move caught half way',
      );
      child.kill('SIGKILL');
      await exited(child);
      await blocker.query('rollback');
    } finally {
      child.kill('SIGKILL');
      await blocker.end();
    }
    const movedBeforeCrash = (await count('crash')).total;
    expect(movedBeforeCrash).toBeGreaterThanOrEqual(1_000);
    expect(movedBeforeCrash).toBeLessThan(total);
    // The killed process's lease runs out; this one takes over and moves the rest.
    const successor = await Postbox.create({
      databaseUrl: database.url,
      timekeeper: 'on',
      timekeeperOptions: { leaseTtlMs: 1_500, pollIntervalMs: 300, standbyIntervalMs: 300 },
    });
    try {
      await waitFor(async () => (await count('crash')).total >= total, 30_000, 'the rest moved by the successor');
      await delay(500);
    } finally {
      await successor.close();
    }
    expect(await count('crash')).toEqual({ total, distinct: total });
    expect(await postbox.listScheduled({ topic: 'crash' })).toEqual([]);
  });

  it('lets one of two instances move at a time, and hands over at once when it stops', async () => {
    // A standby looks every 3 s and a lease lasts 9 s: a takeover sooner than that can only come from the hand-back.
    const options = { leaseTtlMs: 9_000, pollIntervalMs: 200, standbyIntervalMs: 3_000, moveBatchSize: 100 };
    const first = await Postbox.create({ databaseUrl: database.url, timekeeper: 'on', timekeeperOptions: { ...options, owner: 'first' } });
    const second = await Postbox.create({
      databaseUrl: database.url,
      timekeeper: 'on',
      timekeeperOptions: { ...options, owner: 'second' },
    });
    try {
      await waitFor(() => [first, second].some((p) => p.timekeeper?.state === 'active'), 10_000, 'one to take the lease');
      const [holder, standby] = first.timekeeper?.state === 'active' ? [first, second] : [second, first];
      expect(standby.timekeeper?.state).toBe('standby');
      await scheduleDueNow('pair', 2_000);
      await waitFor(async () => (await count('pair')).total === 2_000, 20_000, 'the pair to move everything');
      expect(holder.timekeeper?.moved).toBe(2_000);
      expect(standby.timekeeper?.moved).toBe(0);
      expect((await postbox.timeStatus()).timekeeper?.owner).toBe(holder.timekeeper?.owner);

      const stoppedAt = Date.now();
      await holder.stopTimekeeper();
      await waitFor(() => standby.timekeeper?.state === 'active', 5_000, 'the standby to take over');
      // The lease was handed back with a NOTIFY: no waiting for the standby's next look, nor for a lease to run out.
      expect(Date.now() - stoppedAt).toBeLessThan(2_500);
      await scheduleDueNow('pair', 500);
      await waitFor(async () => (await count('pair')).total === 2_500, 20_000, 'the standby to move the rest');
      expect(standby.timekeeper?.moved).toBe(500);
      expect(await count('pair')).toEqual({ total: 2_500, distinct: 2_500 });
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  it('reports a lost lease and moves nothing more once another process holds it', async () => {
    const keeper = await Postbox.create({
      databaseUrl: database.url,
      timekeeper: 'on',
      timekeeperOptions: { owner: 'usurped', leaseTtlMs: 60_000, pollIntervalMs: 200, standbyIntervalMs: 60_000 },
    });
    try {
      await waitFor(() => keeper.timekeeper?.state === 'active', 10_000, 'the lease');
      // Someone else holds the lease now (as after this process stalled past its lease time).
      await postbox.db.query(
        `update postbox.leases set owner = 'thief', expires_at = now() + interval '1 minute' where name = 'timekeeper'`,
      );
      await waitFor(() => keeper.timekeeper?.state === 'standby', 5_000, 'the keeper to notice');
      await scheduleDueNow('fenced', 50);
      await delay(1_000);
      expect((await count('fenced')).total).toBe(0);
      expect(keeper.timekeeper?.moved).toBe(0);
    } finally {
      await keeper.close();
      await postbox.db.query(`update postbox.leases set owner = null, expires_at = null where name = 'timekeeper'`);
    }
  });
});
