import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Consumer, type ConsumerOptions } from '../src/consumers/consumer.js';
import type { Postbox } from '../src/postbox.js';
import type { Database, Executor, QueryResult } from '../src/sql/database.js';
import { backends, type TestPostbox } from './support/backends.js';
import { waitFor } from './support/wait.js';

const notOnPglite = (..._test: unknown[]) => undefined;

interface TransactionRecord {
  /** The batch was read inside this transaction (not taken from a read-ahead). */
  readInside: boolean;
}

/**
 * The database as the consumer sees it, watched: reads on the pool (read-aheads) and, for each
 * transaction, whether the batch was read inside it.
 */
function watched(db: Database) {
  const poolReads: Promise<unknown>[] = [];
  const transactions = new Map<Executor, TransactionRecord>();
  const database: Database = {
    kind: db.kind,
    description: db.description,
    query: <R>(text: string, params?: readonly unknown[]) => db.query<R>(text, params),
    exec: (script: string) => db.exec(script),
    queryNamed<R>(name: string, text: string, params: readonly unknown[]): Promise<QueryResult<R>> {
      const result = db.queryNamed<R>(name, text, params);
      if (text.includes('postbox.read_after')) poolReads.push(result.catch(() => undefined));
      return result;
    },
    preparesNamedStatements: db.preparesNamedStatements,
    transaction: <T>(fn: (tx: Executor) => Promise<T>) =>
      db.transaction((inner) => {
        const record: TransactionRecord = { readInside: false };
        const tx: Executor = {
          query: <R>(text: string, params?: readonly unknown[]) => {
            if (text.includes('postbox.read_after')) record.readInside = true;
            return inner.query<R>(text, params);
          },
          exec: (script: string) => inner.exec(script),
        };
        transactions.set(tx, record);
        return fn(tx);
      }),
    listen: (channel, onPayload, onReconnect) => db.listen(channel, onPayload, onReconnect),
    close: () => db.close(),
  };
  /** Resolves once a read-ahead issued after `count` earlier ones has finished. */
  const readAheadSettled = async (count: number) => {
    await waitFor(() => poolReads.length > count, 5_000, 'a read-ahead');
    await poolReads.at(-1);
  };
  return { database, poolReads, transactions, readAheadSettled };
}

describe.each(backends)('transactional read-ahead on $name', (backend) => {
  let env: TestPostbox;
  let postbox: Postbox;
  const running: Consumer[] = [];

  beforeAll(async () => {
    env = await backend.open();
    postbox = env.postbox;
    await postbox.db.query('create table ahead_effects (seq bigserial primary key, grp text not null, value int not null)');
  });
  afterAll(async () => {
    await Promise.all(running.map((c) => c.stop(2_000)));
    await env.cleanup();
  });

  function start(db: Database, options: Omit<ConsumerOptions, 'pollIntervalMs' | 'retryDelayMs'>): Consumer {
    const consumer = new Consumer(
      db,
      { pollIntervalMs: 100, retryDelayMs: 20, ...options },
      { payloadLimitBytes: postbox.payloadLimitBytes },
    );
    running.push(consumer);
    return consumer;
  }

  async function effects(group: string): Promise<number[]> {
    const { rows } = await postbox.db.query<{ value: number }>('select value from ahead_effects where grp = $1 order by seq', [group]);
    return rows.map((row) => row.value);
  }

  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

  it('reads the next batch while a batch commits, and reads a rolled-back batch again instead of its read-ahead', async () => {
    const group = 'ahead-rollback';
    await postbox.publish(range(0, 40).map((i) => ({ topic: group, type: 't', payload: i })));
    const spy = watched(postbox.db);
    const attempts: number[][] = [];
    const fromReadAhead: boolean[] = [];
    const consumer = start(spy.database, {
      group,
      topics: [group],
      transactional: true,
      batchSize: 10,
      leaseTtlMs: 60_000,
      handleBatch: async (messages, ctx) => {
        const values = messages.map((m) => m.payload as number);
        attempts.push(values);
        fromReadAhead.push(ctx.tx ? spy.transactions.get(ctx.tx)?.readInside === false : false);
        for (const value of values) await ctx.tx?.query('insert into ahead_effects (grp, value) values ($1, $2)', [group, value]);
        if (attempts.length === 2) {
          // PGlite is one connection: its read-ahead waits for this transaction, so it cannot be awaited here.
          if (backend.name === 'postgres') await spy.readAheadSettled(0);
          throw new Error('the second batch fails once, after the third was read ahead');
        }
      },
    });
    await consumer.start();
    await waitFor(() => consumer.handled === 40, 10_000, 'every message');
    expect(await effects(group)).toEqual(range(0, 40));
    expect(attempts.map((values) => values[0])).toEqual([0, 10, 10, 20, 30]);
    expect(attempts.every((values) => values.length === 10)).toBe(true);
    // The batches after the retried one came from read-aheads, not from reads inside their transactions.
    expect(fromReadAhead.slice(3)).toEqual([true, true]);
  });

  (backend.name === 'postgres' ? it : notOnPglite)(
    'drops the read-ahead of a batch whose lease was lost, and resumes at the checkpoint',
    async () => {
      const group = 'ahead-lease';
      await postbox.publish(range(0, 30).map((i) => ({ topic: group, type: 't', payload: i })));
      const spy = watched(postbox.db);
      const attempts: number[][] = [];
      let stolen = false;
      const consumer = start(spy.database, {
        group,
        topics: [group],
        transactional: true,
        batchSize: 10,
        leaseTtlMs: 600,
        handleBatch: async (messages, ctx) => {
          const values = messages.map((m) => m.payload as number);
          attempts.push(values);
          for (const value of values) await ctx.tx?.query('insert into ahead_effects (grp, value) values ($1, $2)', [group, value]);
          if (attempts.length === 2) {
            await spy.readAheadSettled(0);
            // Another process takes the group while this batch is in flight: its commit is fenced off.
            await postbox.db.query(
              `update postbox.group_partitions set lease_owner = 'other', lease_expires_at = now() + interval '1 hour' where group_name = $1`,
              [group],
            );
            stolen = true;
          }
        },
      });
      await consumer.start();
      await waitFor(() => stolen && consumer.state === 'standby', 10_000, 'the consumer to lose its lease');
      expect(await effects(group)).toEqual(range(0, 10));
      await postbox.db.query(`update postbox.group_partitions set lease_owner = null, lease_expires_at = null where group_name = $1`, [
        group,
      ]);
      await waitFor(() => consumer.handled === 30, 10_000, 'every message after the lease came back');
      expect(await effects(group)).toEqual(range(0, 30));
      expect(attempts.map((values) => values[0])).toEqual([0, 10, 10, 20]);
    },
  );
});
