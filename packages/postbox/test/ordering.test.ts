import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogMessage } from '../src/log/message.js';
import { readAfter } from '../src/log/read.js';
import { Postbox } from '../src/postbox.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { delay, waitFor } from './support/wait.js';

// Concurrent transactions need a server: PGlite has a single connection and runs transactions one at a time.
describe('commit order on PostgreSQL', () => {
  let database: TestDatabase;
  let postbox: Postbox;
  const clients: pg.Client[] = [];

  async function client(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: database.url });
    await c.connect();
    clients.push(c);
    return c;
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    postbox = await Postbox.create({ databaseUrl: database.url, pool: { max: 20 } });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await postbox.close(2_000);
    await database.drop();
  });

  it('never skips a transaction that commits after a later one', async () => {
    const a = await client();
    const b = await client();
    await a.query('begin');
    const [idA] = await postbox.enqueue(a, { topic: 'ooo', type: 't', payload: 'A' });
    await b.query('begin');
    const [idB] = await postbox.enqueue(b, { topic: 'ooo', type: 't', payload: 'B' });
    await b.query('commit');

    let position = { transactionId: 0n, globalPosition: 0n };
    const read = async () => {
      const batch = await readAfter(postbox.db, { topics: ['ooo'], after: position, limit: 100 });
      const last = batch.at(-1);
      if (last) position = { transactionId: last.transactionId, globalPosition: last.globalPosition };
      return batch.map((m) => m.id);
    };
    // B has committed, but A (an older transaction) is still open: reading B now would let A be skipped.
    expect(await read()).toEqual([]);
    await a.query('commit');
    // The watermark is server-wide: a transaction of another test's database may still hold it back briefly.
    const seen: string[] = [];
    await waitFor(
      async () => {
        seen.push(...(await read()));
        return seen.length >= 2;
      },
      10_000,
      'both messages',
    );
    expect(seen).toEqual([idA, idB]);
    expect(await read()).toEqual([]);
  });

  it('starts a latest group after committed transactions but delivers the ones still open at creation', async () => {
    const open = await client();
    const early = await client();
    await open.query('begin');
    await postbox.enqueue(open, { topic: 'late', type: 't', payload: 'in flight at creation' });
    await early.query('begin');
    await postbox.enqueue(early, { topic: 'late', type: 't', payload: 'committed before creation' });
    await early.query('commit');

    const seen: unknown[] = [];
    const consumer = postbox.consumer({
      group: 'late-g',
      topics: ['late'],
      startFrom: 'latest',
      pollIntervalMs: 50,
      handleBatch: async (messages) => void seen.push(...messages.map((m) => m.payload)),
    });
    await consumer.start();
    await waitFor(() => consumer.state === 'active', 5_000, 'the lease');
    await postbox.publish({ topic: 'late', type: 't', payload: 'after creation' });
    await open.query('commit');
    await waitFor(() => seen.length >= 2, 5_000, 'two messages');
    await delay(300);
    await consumer.stop();
    expect(seen).toEqual(['in flight at creation', 'after creation']);
  });

  it('re-reads soon when a NOTIFY arrives while an older transaction holds the watermark back', async () => {
    const seen: unknown[] = [];
    const consumer = postbox.consumer({
      group: 'held-back-g',
      topics: ['held-back'],
      pollIntervalMs: 60_000,
      handleBatch: async (messages) => void seen.push(...messages.map((m) => m.payload)),
    });
    await consumer.start();
    await waitFor(() => consumer.state === 'active', 5_000, 'the lease');
    const older = await client();
    await older.query('begin');
    await older.query('select pg_current_xact_id()');
    await postbox.publish({ topic: 'held-back', type: 't', payload: 'behind the watermark' });
    await delay(300);
    expect(seen).toEqual([]);
    const released = Date.now();
    await older.query('commit');
    await waitFor(() => seen.length === 1, 5_000, 'the held-back message');
    expect(Date.now() - released).toBeLessThan(3_000);
    await consumer.stop();
  });

  it('delivers 100k messages from 8 racing writers exactly once to a transactional group', async () => {
    await postbox.db.query(
      'create table delivered (arrival bigint generated always as identity, message_id uuid not null, key text not null, seq int not null)',
    );
    const writers = 8;
    const perWriter = 12_500;
    const consumer = postbox.consumer({
      group: 'scale-g',
      topics: ['scale'],
      transactional: true,
      pollIntervalMs: 20,
      handleBatch: async (messages: LogMessage[], ctx) => {
        await ctx.tx?.query(
          'insert into delivered (message_id, key, seq) select id, k, s from unnest($1::uuid[], $2::text[], $3::int[]) with ordinality as u(id, k, s, n) order by n',
          [messages.map((m) => m.id), messages.map((m) => m.key), messages.map((m) => (m.payload as { seq: number }).seq)],
        );
      },
    });
    await consumer.start();
    const rolledBack: string[] = [];
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        const c = await client();
        let seq = 0;
        while (seq < perWriter) {
          const size = Math.min(perWriter - seq, 1 + Math.floor(Math.random() * 400));
          const messages = Array.from({ length: size }, (_, i) => ({ topic: 'scale', type: 't', key: `w${w}`, payload: { seq: seq + i } }));
          await c.query('begin');
          const ids = await postbox.enqueue(c, messages);
          await delay(Math.random() * 15);
          if (Math.random() < 0.05) {
            await c.query('rollback');
            rolledBack.push(...ids);
            continue;
          }
          await c.query('commit');
          seq += size;
        }
      }),
    );
    await waitFor(async () => consumer.handled >= writers * perWriter, 90_000, 'every message');
    await delay(200);
    await consumer.stop();
    const { rows } = await postbox.db.query<{ n: number; ids: number }>(
      'select count(*)::int as n, count(distinct message_id)::int as ids from delivered',
    );
    expect(rows[0]).toEqual({ n: writers * perWriter, ids: writers * perWriter });
    const ghosts = await postbox.db.query<{ n: number }>('select count(*)::int as n from delivered where message_id = any($1::uuid[])', [
      rolledBack,
    ]);
    expect(ghosts.rows[0]?.n).toBe(0);
    // Per-key order: each writer's sequence arrives in order.
    const order = await postbox.db.query<{ broken: number }>(
      `select count(*)::int as broken from (
         select seq, lag(seq) over (partition by key order by arrival) as previous from delivered
       ) s where previous is not null and seq <> previous + 1`,
    );
    expect(order.rows[0]?.broken).toBe(0);
  });

  it('keeps the read on the reader index on a fresh, fast-growing table', async () => {
    const fresh = await createTestDatabase();
    const other = await Postbox.create({ databaseUrl: fresh.url });
    try {
      for (let i = 0; i < 20; i++) {
        await other.publish(Array.from({ length: 500 }, (_, j) => ({ topic: j % 2 ? 'p1' : 'p2', type: 't', payload: { i, j } })));
      }
      await other.transaction(async (tx) => {
        await tx.query(`select * from postbox.read_after('{p1}', '0', 0, 1000)`);
        await tx.query(`select * from postbox.read_after('{p1,p2}', '0', 0, 1000)`);
        const { rows } = await tx.query<{ seq_scan: number; idx_scan: number }>(
          `select seq_scan::int, idx_scan::int from pg_stat_xact_user_tables where schemaname = 'postbox' and relname = 'messages'`,
        );
        expect(rows[0]?.seq_scan).toBe(0);
        expect(rows[0]?.idx_scan).toBeGreaterThanOrEqual(2);
      });
    } finally {
      await other.close();
      await fresh.drop();
    }
  });

  it('reports the delay a long-running writer imposes on readers', async () => {
    const long = await client();
    await long.query('begin');
    await postbox.enqueue(long, { topic: 'wm', type: 't', payload: 'slow' });
    await delay(1_200);
    const status = await postbox.status();
    expect(status.watermarkDelaySeconds).toBeGreaterThanOrEqual(1);
    await long.query('commit');
    expect((await postbox.status()).watermarkDelaySeconds).toBeLessThan(1);
  });
});
