import type { ChildProcess } from 'node:child_process';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Consumer } from '../src/consumers/consumer.js';
import { bucketOf, partitionOfBucket } from '../src/log/partition.js';
import { Postbox } from '../src/postbox.js';
import { pgliteDatabase } from '../src/sql/pglite-database.js';
import { exited, spawnTs, waitForLine } from './support/child.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { propertyRuns, storable } from './support/properties.js';
import { delay, waitFor } from './support/wait.js';

describe('partitioned consumer groups on PostgreSQL', () => {
  let database: TestDatabase;
  let postbox: Postbox;
  const consumers: Consumer[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    postbox = await Postbox.create({ databaseUrl: database.url, pool: { max: 30 } });
  });
  afterAll(async () => {
    await Promise.all(consumers.map((consumer) => consumer.stop(2_000)));
    await postbox.close(2_000);
    await database.drop();
  });

  const member = (group: string, owner: string, partitions = 8) => {
    const consumer = postbox.consumer({
      group,
      topics: [group],
      partitions,
      owner,
      leaseTtlMs: 1_000,
      pollIntervalMs: 50,
      handleBatch: async () => {},
    });
    consumers.push(consumer);
    return consumer;
  };

  it('puts a message in the same bucket and partition in SQL as in TypeScript', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.option(
            fc.string({ unit: 'grapheme', maxLength: 40 }).filter((key) => storable(key) && key.trim() !== '' && !key.startsWith('\ufeff')),
          ),
          {
            minLength: 1,
            maxLength: 20,
          },
        ),
        async (keys) => {
          const ids = await postbox.publish(keys.map((key) => ({ topic: 'buckets', type: 't', key, payload: {} })));
          const { rows } = await postbox.db.query<{ id: string; key: string | null; bucket: number }>(
            'select message_id::text as id, key, bucket from postbox.messages where message_id = any($1::uuid[])',
            [ids],
          );
          expect(rows).toHaveLength(keys.length);
          for (const row of rows) expect(row.bucket).toBe(bucketOf(row.key, row.id));
        },
      ),
      propertyRuns(30),
    );
    const { rows } = await postbox.db.query<{ bucket: number; partitions: number; partition: number }>(
      `select b as bucket, n as partitions, postbox.partition_of(b, n) as partition
       from generate_series(0, 63) as b, generate_series(1, 64) as n`,
    );
    expect(rows).toHaveLength(64 * 64);
    for (const row of rows) expect(row.partition).toBe(partitionOfBucket(row.bucket, row.partitions));
    // Every partition of every group size gets at least one bucket.
    for (let partitions = 1; partitions <= 64; partitions++) {
      const got = new Set(Array.from({ length: 64 }, (_, bucket) => partitionOfBucket(bucket, partitions)));
      expect(got.size).toBe(partitions);
    }
  });

  it('reads a partition on its index, touching only its own rows, on a table never analysed', async () => {
    const fresh = await createTestDatabase();
    const client = new pg.Client({ connectionString: fresh.url });
    const fast = await Postbox.create({ databaseUrl: fresh.url });
    try {
      await client.connect();
      // Many topics and keys, so that a plan that scanned the table or a topic's other rows would show it.
      for (let round = 0; round < 10; round++) {
        await fast.publish(
          Array.from({ length: 1_000 }, (_, i) => ({
            topic: i % 3 === 0 ? 'orders' : `other-${i % 5}`,
            type: 't',
            key: `k${i % 97}`,
            payload: {},
          })),
        );
      }
      // Never analysed nor vacuumed: the planner knows nothing of the table.
      const { rows: analysed } = await client.query<{ reltuples: number }>(
        `select reltuples from pg_class where oid = 'postbox.messages'::regclass`,
      );
      expect(Number(analysed[0]?.reltuples)).toBe(-1);
      const notices: string[] = [];
      client.on('notice', (notice) => notices.push(notice.message ?? ''));
      await client.query(`load 'auto_explain'`);
      await client.query(
        `set auto_explain.log_min_duration = 0; set auto_explain.log_analyze = on; set auto_explain.log_nested_statements = on;
         set auto_explain.log_level = notice; set client_min_messages = notice`,
      );
      const { rows } = await client.query<{ id: string; bucket: number }>(
        `select global_position::text as id, bucket from postbox.read_after(array['orders'], '0'::xid8, 0, 100, null, 2, 8)`,
      );
      // At least a page of each full range, at most the limit: exactly the partition's first rows, in log order.
      expect(rows.length).toBeGreaterThanOrEqual(25);
      expect(rows.length).toBeLessThanOrEqual(100);
      await client.query('set auto_explain.log_min_duration = -1');
      const { rows: expected } = await client.query<{ id: string }>(
        `select global_position::text as id from postbox.messages where topic = 'orders' and postbox.partition_of(bucket, 8) = 2
         order by transaction_id, global_position limit $1`,
        [rows.length],
      );
      expect(rows.map((row) => row.id)).toEqual(expected.map((row) => row.id));
      // Partition 2 of 8 owns buckets 16 to 23.
      expect(rows.every((row) => row.bucket >= 16 && row.bucket <= 23)).toBe(true);
      const plan = notices.find((text) => text.includes('messages_partition_reader_idx')) ?? notices.join('\n---\n');
      expect(plan).toContain('Index Scan using messages_partition_reader_idx on messages m');
      expect(plan).not.toMatch(/Seq Scan on messages|Bitmap Heap Scan on messages/);
      // The index condition holds the whole predicate: no row of another topic or bucket is read and dropped.
      expect(plan).toMatch(/on messages m [^\n]*\n\s+Index Cond: \(\(topic = t\.name\) AND \(bucket = b\.bucket\) AND/);
      expect(plan).not.toMatch(/on messages m [^\n]*\n\s+Index Cond: [^\n]*\n\s+(Rows Removed by )?Filter/);
      // Eight buckets, each read on its own range, a page of 25 (2 × 100 / 8): never more than twice what the read returns.
      const scanned = [
        ...plan.matchAll(/Index Scan using messages_partition_reader_idx on messages m .*actual time=\S+ rows=(\d+) loops=(\d+)/g),
      ];
      expect(scanned.length).toBeGreaterThan(0);
      const rowsRead = scanned.reduce((sum, match) => sum + Number(match[1]) * Number(match[2]), 0);
      expect(rowsRead).toBeLessThanOrEqual(200);
    } finally {
      await client.end();
      await fast.close(2_000);
      await fresh.drop();
    }
  });

  it('reads a partition that is behind batch after batch, without waiting for the poll interval', async () => {
    const group = 'behind';
    for (let first = 0; first < 20_000; first += 1_000) {
      await postbox.publish(
        Array.from({ length: 1_000 }, (_, i) => ({ topic: group, type: 't', key: `k${(first + i) % 500}`, payload: i })),
      );
    }
    const consumer = postbox.consumer({
      group,
      topics: [group],
      partitions: 2,
      owner: 'solo',
      batchSize: 500,
      pollIntervalMs: 30_000,
      handleBatch: async () => {},
    });
    consumers.push(consumer);
    await consumer.start();
    // A partition's read ends at its first bucket range that filled its page, short of a batch: 40 or more
    // reads, each of which would otherwise wait out the poll interval.
    await waitFor(() => consumer.handled === 20_000, 15_000, 'every message, read without pauses');
  });

  it('lets members that create a new group at the same moment all join it', async () => {
    for (let round = 0; round < 10; round++) {
      const group = `created-together-${round}`;
      const together = ['a', 'b', 'c', 'd'].map((owner) => member(group, owner, 4));
      await Promise.all(together.map((consumer) => consumer.start()));
      const [status] = await postbox.groupStatus(group);
      expect(status?.partitions).toHaveLength(4);
      await Promise.all(together.map((consumer) => consumer.stop()));
    }
  });

  it('refuses a new partition count for an existing group, naming the way forward, and repartitions a stopped group', async () => {
    const first = member('repart', 'a', 4);
    await first.start();
    await postbox.publish(Array.from({ length: 40 }, (_, i) => ({ topic: 'repart', type: 't', key: `k${i}`, payload: i })));
    await waitFor(() => first.handled === 40, 10_000, 'the first member to read everything');
    const other = postbox.consumer({ group: 'repart', topics: ['repart'], partitions: 8, handleBatch: async () => {} });
    await expect(other.start()).rejects.toMatchObject({
      code: 'POSTBOX_ERR_GROUP_PARTITIONS_MISMATCH',
      message: expect.stringContaining('postbox groups repartition repart --partitions 8'),
    });
    await expect(postbox.repartitionGroup('repart', 8)).rejects.toMatchObject({ code: 'POSTBOX_ERR_GROUP_BUSY' });
    await first.stop();
    const result = await postbox.repartitionGroup('repart', 8);
    expect(result).toMatchObject({ group: 'repart', from: 4, to: 8 });
    const [status] = await postbox.groupStatus('repart');
    expect(status?.partitions).toHaveLength(8);
    // Every new partition starts at the earliest old checkpoint: nothing is skipped.
    const again = member('repart', 'b', 8);
    await again.start();
    await waitFor(() => again.handled === result.redelivered, 10_000, 'the redelivered messages');
    expect((await postbox.groupStatus('repart'))[0]?.lagMessages).toBe(0);
  });

  it('spreads the partitions evenly over its members, and a stopping member hands its partitions over at once', async () => {
    const group = 'spread';
    const held = (c: Consumer) => c.partitions.length;
    const a = member(group, 'a');
    await a.start();
    await waitFor(() => held(a) === 8, 10_000, 'the only member to hold every partition');
    const b = member(group, 'b');
    await b.start();
    await waitFor(() => held(a) === 4 && held(b) === 4, 10_000, 'two members to hold four each');
    const c = member(group, 'c');
    await c.start();
    await waitFor(
      () => held(a) + held(b) + held(c) === 8 && Math.max(held(a), held(b), held(c)) - Math.min(held(a), held(b), held(c)) <= 1,
      10_000,
      'three members to share eight partitions',
    );
    const [status] = await postbox.groupStatus(group);
    expect(status?.members.filter((m) => m.live).map((m) => m.member)).toEqual(['a', 'b', 'c']);
    expect(status?.partitions.every((p) => p.owner !== null)).toBe(true);
    const stopping = Date.now();
    await a.stop();
    await waitFor(() => held(b) === 4 && held(c) === 4, 10_000, "the two that remain to take the stopped member's share");
    // At once: well within the one-second lease, which a dead member's partitions would wait out.
    expect(Date.now() - stopping).toBeLessThan(900);
  });

  it('keeps every committed message, once, and every key in log order, while members are killed, added and stopped, one owner per partition at a time', async () => {
    const group = 'rebalanced';
    await postbox.db.query(
      `create table effects (id bigint generated always as identity, message_id uuid not null, key text, seq int, partition int, owner text);
       create table batches (partition int, owner text, started_at timestamptz, finished_at timestamptz, messages int)`,
    );
    const members = new Map<string, ChildProcess>();
    const join = async (owner: string) => {
      const child = spawnTs('fixtures/partition-member.ts', {
        DATABASE_URL: database.url,
        GROUP: group,
        TOPIC: group,
        PARTITIONS: '8',
        LEASE_TTL_MS: '1500',
        OWNER: owner,
      });
      members.set(owner, child);
      await waitForLine(child, 'joined');
    };
    try {
      for (const owner of ['m1', 'm2', 'm3']) await join(owner);
      await waitFor(
        async () => ((await postbox.groupStatus(group))[0]?.partitions ?? []).every((p) => p.owner !== null),
        15_000,
        'the three members to hold every partition',
      );

      // 16 writers whose transactions overlap, commit out of order, and sometimes roll back.
      let writing = true;
      const writers = Array.from({ length: 16 }, async (_, w) => {
        const client = new pg.Client({ connectionString: database.url });
        await client.connect();
        try {
          for (let round = 0; writing; round++) {
            await client.query('begin');
            const count = 1 + ((w + round) % 4);
            await postbox.enqueue(
              client,
              Array.from({ length: count }, (_, i) => ({
                topic: group,
                type: 't',
                key: `key-${(w * 7 + round * 3 + i) % 40}`,
                payload: { seq: round, writer: w },
              })),
            );
            await delay((w * 13 + round * 7) % 20);
            await client.query((w + round) % 10 === 0 ? 'rollback' : 'commit');
          }
        } finally {
          await client.end();
        }
      });

      await delay(2_000);
      members.get('m1')?.kill('SIGKILL');
      await delay(1_500);
      await join('m4');
      await delay(1_000);
      await join('m5');
      await delay(1_000);
      for (const owner of ['m2', 'm5']) members.get(owner)?.kill('SIGTERM');
      expect(await Promise.all(['m2', 'm5'].map((owner) => exited(members.get(owner) as ChildProcess)))).toEqual([0, 0]);
      await delay(1_000);
      members.get('m3')?.kill('SIGTERM');
      expect(await exited(members.get('m3') as ChildProcess)).toBe(0);
      await delay(1_000);
      writing = false;
      await Promise.all(writers);

      const committed = async () =>
        (await postbox.db.query<{ n: number }>('select count(*)::int as n from postbox.messages where topic = $1', [group])).rows[0]?.n;
      const total = await committed();
      expect(total).toBeGreaterThan(500);
      await waitFor(
        async () =>
          (await postbox.db.query<{ n: number }>('select count(distinct message_id)::int as n from effects')).rows[0]?.n === total,
        30_000,
        'the last member to handle every committed message',
      );
      await delay(500);

      // Nothing lost, nothing handled twice.
      const { rows: counts } = await postbox.db.query<{ handled: number; distinct: number; missing: number }>(
        `select (select count(*)::int from effects) as handled, (select count(distinct message_id)::int from effects) as distinct,
                (select count(*)::int from postbox.messages m where m.topic = $1
                 and not exists (select from effects e where e.message_id = m.message_id)) as missing`,
        [group],
      );
      expect(counts[0]).toEqual({ handled: total, distinct: total, missing: 0 });
      // Each key's messages were handled in log order, across every change of owner.
      const { rows: disorder } = await postbox.db.query<{ key: string }>(
        `select key from (
           select e.key, e.id, lag(m.transaction_id) over w as prev_tx, lag(m.global_position) over w as prev_pos,
                  m.transaction_id, m.global_position
           from effects e join postbox.messages m on m.message_id = e.message_id
           window w as (partition by e.key order by e.id)
         ) x where (transaction_id, global_position) < (prev_tx, prev_pos)`,
      );
      expect(disorder).toEqual([]);
      // No two members ever handled one partition at once: its committed batches never overlap in time.
      const { rows: overlaps } = await postbox.db.query<{ partition: number }>(
        `select partition from (
           select partition, owner, started_at, lag(finished_at) over (partition by partition order by started_at) as previous_end
           from batches
         ) x where started_at < previous_end`,
      );
      expect(overlaps).toEqual([]);
      const { rows: owners } = await postbox.db.query<{ owner: string }>('select distinct owner from batches order by owner');
      expect(owners.map((row) => row.owner)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
      const [status] = await postbox.groupStatus(group);
      expect(status?.partitions.map((p) => p.owner)).toEqual(Array(8).fill('m4'));
    } finally {
      for (const child of members.values()) child.kill('SIGKILL');
      await Promise.all([...members.values()].map((child) => exited(child)));
    }
  }, 120_000);
});

describe('a partitioned group on PGlite', () => {
  it('runs in one process: its one member holds every partition and reads every message in key order', async () => {
    const postbox = await Postbox.create({ database: await pgliteDatabase(), migrate: 'auto' });
    try {
      const seen: { key: string | null; n: number; partition: number }[] = [];
      const consumer = postbox.consumer({
        group: 'embedded',
        topics: ['embedded'],
        partitions: 4,
        pollIntervalMs: 20,
        transactional: true,
        handleBatch: async (messages, ctx) => {
          for (const m of messages) seen.push({ key: m.key, n: m.payload as number, partition: ctx.partition });
        },
      });
      await consumer.start();
      await postbox.publish(Array.from({ length: 200 }, (_, n) => ({ topic: 'embedded', type: 't', key: `k${n % 10}`, payload: n })));
      await waitFor(() => consumer.handled === 200, 20_000, 'every message');
      expect(consumer.partitions).toEqual([0, 1, 2, 3]);
      for (let k = 0; k < 10; k++) {
        const ofKey = seen.filter((s) => s.key === `k${k}`);
        expect(ofKey.map((s) => s.n)).toEqual([...ofKey.map((s) => s.n)].sort((a, b) => a - b));
        expect(new Set(ofKey.map((s) => s.partition)).size).toBe(1);
      }
      expect(new Set(seen.map((s) => s.partition)).size).toBeGreaterThan(1);
      await consumer.stop();
    } finally {
      await postbox.close(2_000);
    }
  });
});
