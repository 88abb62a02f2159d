import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetTarget } from '../src/cli/reset-target.js';
import { ensureGroup } from '../src/consumers/group-store.js';
import { addDeadLetter } from '../src/deadletters/dead-letter-store.js';
import { partitionOf } from '../src/log/partition.js';
import { Postbox } from '../src/postbox.js';
import { pgliteDatabase } from '../src/sql/pglite-database.js';
import { waitUntilCaughtUp } from '../src/testing/wait-until-caught-up.js';
import { cli, lines } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { delay, waitFor } from './support/wait.js';

interface Delivered {
  id: string;
  partition: number;
}

/** Runs a member of the group until it has read everything readable, then stops it; returns what it read, in order. */
async function drain(postbox: Postbox, group: string, partitions = 1): Promise<Delivered[]> {
  const delivered: Delivered[] = [];
  const consumer = postbox.consumer({
    group,
    topics: [group],
    partitions,
    pollIntervalMs: 20,
    leaseTtlMs: 2_000,
    handleMessage: async (message, context) => {
      delivered.push({ id: message.id, partition: context.partition });
    },
  });
  await consumer.start();
  await waitUntilCaughtUp({ db: postbox.db, group }, { timeoutMs: 15_000 });
  await consumer.stop();
  return delivered;
}

const ids = (delivered: readonly Delivered[]) => delivered.map((entry) => entry.id);

function publishBatch(postbox: Postbox, topic: string, count: number, label: string): Promise<string[]> {
  return postbox.publish(Array.from({ length: count }, (_, i) => ({ topic, type: 't', key: `${label}-${i}`, payload: { label, i } })));
}

describe('groups reset on PostgreSQL', () => {
  let database: TestDatabase;
  let postbox: Postbox;
  const clients: pg.Client[] = [];

  const client = async () => {
    const opened = new pg.Client({ connectionString: database.url });
    await opened.connect();
    clients.push(opened);
    return opened;
  };

  /** The database's clock, between commits: created_at values before it are all earlier, later ones all later. */
  const databaseNow = async () => {
    await delay(15);
    const { rows } = await postbox.db.query<{ now: Date }>('select clock_timestamp() as now');
    await delay(15);
    return new Date(rows[0]?.now as Date);
  };

  const stored = async (group: string) => {
    const { rows } = await postbox.db.query(
      `select p.partition, p.checkpoint_transaction_id::text as tx, p.checkpoint_position::text as pos, g.start_snapshot::text as snapshot
       from postbox.group_partitions p join postbox.consumer_groups g using (group_name) where p.group_name = $1 order by p.partition`,
      [group],
    );
    return rows;
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    postbox = await Postbox.create({ databaseUrl: database.url, pool: { max: 20 } });
  });
  afterAll(async () => {
    await Promise.all(clients.map((opened) => opened.end().catch(() => undefined)));
    await postbox.close(2_000);
    await database.drop();
  });

  it('to a time: delivers exactly the messages committed from then on, in order, and counts them', async () => {
    const group = 'by-time';
    const before = [...(await publishBatch(postbox, group, 3, 'a')), ...(await publishBatch(postbox, group, 2, 'b'))];
    const at = await databaseNow();
    const after = [...(await publishBatch(postbox, group, 2, 'c')), ...(await publishBatch(postbox, group, 4, 'd'))];
    expect(ids(await drain(postbox, group))).toEqual([...before, ...after]);

    const result = await postbox.resetGroup({ group, to: { time: at } });
    expect(result).toMatchObject({ group, topics: [group], dryRun: false, readAgain: after.length, skipped: 0, openDeadLetters: 0 });
    expect(result.partitions).toHaveLength(1);
    expect(ids(await drain(postbox, group))).toEqual(after);

    // Back to a time before everything, then forward past it: a forward reset counts what it skips.
    await postbox.resetGroup({ group, to: { time: new Date(at.getTime() - 3_600_000) } });
    const forward = await postbox.resetGroup({ group, to: { time: at } });
    expect(forward).toMatchObject({ readAgain: 0, skipped: before.length });
    expect(ids(await drain(postbox, group))).toEqual(after);
  });

  it('to a time: reads a transaction that began before it only when it provably committed after it, and every transaction still open', async () => {
    const group = 'by-time-overlap';
    const first = await publishBatch(postbox, group, 2, 'first');
    expect(ids(await drain(postbox, group))).toEqual(first);
    // Began before the time and wrote at once: its id is older than any transaction begun after the time.
    const early = await client();
    await early.query('begin');
    const [earlyId] = await postbox.enqueue(early, { topic: group, type: 't', key: 'early', payload: {} });
    // Began before the time, writes only later: its id comes after one begun after the time, so it committed after it.
    const late = await client();
    await late.query('begin');
    await late.query('select now()');
    // Began before the time, still open when the group is reset: it commits after the reset, so after the time.
    const open = await client();
    await open.query('begin');
    const [openId] = await postbox.enqueue(open, { topic: group, type: 't', key: 'open', payload: {} });

    const at = await databaseNow();
    const begunAfter = await publishBatch(postbox, group, 2, 'after');
    const [lateId] = await postbox.enqueue(late, { topic: group, type: 't', key: 'late', payload: {} });
    await late.query('commit');
    await early.query('commit');
    const last = await publishBatch(postbox, group, 1, 'last');

    const result = await postbox.resetGroup({ group, to: { time: at } });
    // Committed now and left out: the early transaction only (the open one is not visible to anyone yet).
    expect(result).toMatchObject({ readAgain: 0, skipped: 1 });
    await open.query('commit');
    // In read order: the open transaction took its id before the one begun after the time.
    expect(ids(await drain(postbox, group))).toEqual([openId, ...begunAfter, lateId, ...last]);
    expect(earlyId).toBeDefined();
  });

  it('to a time after the last message is the latest start, and a time in the future is refused', async () => {
    const group = 'by-time-end';
    await publishBatch(postbox, group, 3, 'old');
    const at = await databaseNow();
    await ensureGroup(postbox.db, { name: group, topics: [group], startFrom: 'earliest', ephemeral: false, partitions: 1 });
    const result = await postbox.resetGroup({ group, to: { time: at } });
    expect(result).toMatchObject({ readAgain: 0, skipped: 3 });
    const fresh = await publishBatch(postbox, group, 2, 'new');
    expect(ids(await drain(postbox, group))).toEqual(fresh);
    await expect(postbox.resetGroup({ group, to: { time: new Date(Date.now() + 3_600_000) } })).rejects.toMatchObject({
      code: 'POSTBOX_ERR_BAD_OPTION',
      message: expect.stringContaining("after the database's current time"),
    });
  });

  it('to earliest reads every message again; to latest skips what is committed and reads what commits after, an open transaction included', async () => {
    const group = 'ends';
    const all = [...(await publishBatch(postbox, group, 4, 'x')), ...(await publishBatch(postbox, group, 3, 'y'))];
    expect(ids(await drain(postbox, group))).toEqual(all);
    const earliest = await postbox.resetGroup({ group, to: 'earliest' });
    expect(earliest).toMatchObject({ readAgain: all.length, skipped: 0, skipVisibleIn: null });
    expect(earliest.partitions[0]?.to).toEqual({ transactionId: 0n, globalPosition: 0n });
    expect(ids(await drain(postbox, group))).toEqual(all);

    await postbox.resetGroup({ group, to: 'earliest' });
    // One open transaction older than a commit (so in the snapshot's list of running ones), one newer than every commit.
    const older = await client();
    await older.query('begin');
    const [olderId] = await postbox.enqueue(older, { topic: group, type: 't', key: 'older', payload: {} });
    await publishBatch(postbox, 'ends-elsewhere', 1, 'e');
    const newer = await client();
    await newer.query('begin');
    const [newerId] = await postbox.enqueue(newer, { topic: group, type: 't', key: 'newer', payload: {} });
    const latest = await postbox.resetGroup({ group, to: 'latest' });
    expect(latest).toMatchObject({ readAgain: 0, skipped: all.length });
    expect(latest.skipVisibleIn).not.toBeNull();
    const next = await publishBatch(postbox, group, 2, 'z');
    await newer.query('commit');
    await older.query('commit');
    expect(ids(await drain(postbox, group))).toEqual([olderId, newerId, ...next]);
  });

  it('to a message id: that message is the next one read, inclusive, even inside a transaction of several', async () => {
    const group = 'by-id';
    const batch = await publishBatch(postbox, group, 6, 'one');
    const more = await publishBatch(postbox, group, 2, 'two');
    expect(ids(await drain(postbox, group))).toEqual([...batch, ...more]);
    const target = batch[3] as string;
    const result = await postbox.resetGroup({ group, to: { messageId: target.toUpperCase() } });
    expect(result).toMatchObject({ to: { messageId: target }, readAgain: 5, skipped: 0 });
    expect(ids(await drain(postbox, group))).toEqual([...batch.slice(3), ...more]);

    await expect(postbox.resetGroup({ group, to: { messageId: '01890a5d-ac96-774b-bcce-b302099a8057' } })).rejects.toMatchObject({
      code: 'POSTBOX_ERR_MESSAGE_NOT_FOUND',
    });
    const [foreign] = await publishBatch(postbox, 'by-id-other', 1, 'other');
    await expect(postbox.resetGroup({ group, to: { messageId: foreign as string } })).rejects.toMatchObject({
      code: 'POSTBOX_ERR_MESSAGE_NOT_IN_GROUP',
      details: { group, topic: 'by-id-other' },
    });
  });

  it('refuses unknown groups and bad input with typed errors, changing nothing', async () => {
    await expect(postbox.resetGroup({ group: 'no-such-group', to: 'earliest' })).rejects.toMatchObject({
      code: 'POSTBOX_ERR_GROUP_NOT_FOUND',
    });
    const group = 'bad-input';
    await ensureGroup(postbox.db, { name: group, topics: [group], startFrom: 'earliest', ephemeral: false, partitions: 1 });
    // One unknown group among several: none of them is reset.
    await expect(postbox.resetGroups({ groups: [group, 'no-such-group'], to: 'latest' })).rejects.toMatchObject({
      code: 'POSTBOX_ERR_GROUP_NOT_FOUND',
      details: { group: 'no-such-group' },
    });
    for (const to of ['middle', { time: new Date('nope') }, { messageId: 'not-a-uuid' }, null] as never[]) {
      await expect(postbox.resetGroup({ group, to })).rejects.toMatchObject({ code: 'POSTBOX_ERR_BAD_OPTION' });
    }
    await expect(postbox.resetGroup({ group, to: 'latest', wait: -1 })).rejects.toMatchObject({ code: 'POSTBOX_ERR_BAD_OPTION' });
    await expect(postbox.resetGroups({ groups: [], to: 'latest' })).rejects.toMatchObject({ code: 'POSTBOX_ERR_BAD_OPTION' });
    expect(await stored(group)).toEqual([{ partition: 0, tx: '0', pos: '0', snapshot: null }]);
  });

  it('moves every partition of a partitioned group: each delivers exactly its share of the messages committed after the time', async () => {
    const group = 'partitioned-reset';
    const partitions = 4;
    const write = (round: number) =>
      postbox.publish(Array.from({ length: 24 }, (_, i) => ({ topic: group, type: 't', key: `k${i % 12}`, payload: { round, i } })));
    const early = [...(await write(0)), ...(await write(1))];
    const at = await databaseNow();
    const late = [...(await write(2)), ...(await write(3))];
    expect(await drain(postbox, group, partitions)).toHaveLength(early.length + late.length);

    const { rows } = await postbox.db.query<{ id: string; key: string }>(
      'select message_id::text as id, key from postbox.messages where message_id = any($1::uuid[]) order by transaction_id, global_position',
      [late],
    );
    const expected = new Map<number, string[]>();
    for (const row of rows) {
      const partition = partitionOf(row.key, row.id, partitions);
      expected.set(partition, [...(expected.get(partition) ?? []), row.id]);
    }
    const result = await postbox.resetGroup({ group, to: { time: at } });
    expect(result.partitions.map((partition) => partition.partition)).toEqual([0, 1, 2, 3]);
    for (const partition of result.partitions) {
      expect(partition.readAgain).toBe(expected.get(partition.partition)?.length ?? 0);
      expect(partition.skipped).toBe(0);
    }
    expect(new Set((await stored(group)).map((row) => `${row.tx}/${row.pos}`)).size).toBe(1);
    const delivered = await drain(postbox, group, partitions);
    for (let partition = 0; partition < partitions; partition++) {
      // Per partition, in log order: the order a key's messages keep.
      expect(delivered.filter((entry) => entry.partition === partition).map((entry) => entry.id)).toEqual(expected.get(partition) ?? []);
    }
  });

  it('refuses while a process runs the group, and with wait resets as soon as it stops', async () => {
    const group = 'busy-reset';
    const messages = await publishBatch(postbox, group, 5, 'm');
    const seen: string[] = [];
    const consumer = postbox.consumer({
      group,
      topics: [group],
      owner: 'worker-1',
      pollIntervalMs: 20,
      leaseTtlMs: 5_000,
      handleMessage: async (message) => {
        seen.push(message.id);
      },
    });
    await consumer.start();
    await waitUntilCaughtUp({ db: postbox.db, group });
    const before = await stored(group);
    const refused = postbox.resetGroup({ group, to: 'earliest' });
    await expect(refused).rejects.toMatchObject({ code: 'POSTBOX_ERR_GROUP_BUSY', retriable: true, details: { holders: ['worker-1'] } });
    await expect(postbox.resetGroup({ group, to: 'earliest', wait: 300 })).rejects.toMatchObject({
      code: 'POSTBOX_ERR_GROUP_BUSY',
      message: expect.stringMatching(/after waiting \d+ ms/),
    });
    // A dry run does not refuse: it says who runs the group.
    const dry = await postbox.resetGroup({ group, to: 'earliest', dryRun: true });
    expect(dry).toMatchObject({ heldBy: ['worker-1'], readAgain: messages.length });
    expect(await stored(group)).toEqual(before);

    let resolvedAt = 0;
    const waiting = postbox.resetGroup({ group, to: 'earliest', wait: 10_000 });
    void waiting.then(() => {
      resolvedAt = Date.now();
    });
    await delay(500);
    expect(resolvedAt).toBe(0);
    expect(await stored(group)).toEqual(before);
    const stopping = Date.now();
    await consumer.stop();
    const result = await waiting;
    expect(resolvedAt).toBeGreaterThanOrEqual(stopping);
    expect(result).toMatchObject({ readAgain: messages.length, heldBy: [] });
    expect(ids(await drain(postbox, group))).toEqual(messages);
  });

  it('refuses while another transaction holds a row of the group, as a joining member does, instead of waiting for it', async () => {
    const group = 'locked-reset';
    await ensureGroup(postbox.db, { name: group, topics: [group], startFrom: 'earliest', ephemeral: false, partitions: 2 });
    const member = await client();
    await member.query('begin');
    // What a member's first heartbeat holds until it commits: the group's row, through its membership row.
    await member.query(
      `insert into postbox.group_members (group_name, member, expires_at) values ($1, 'joining', now() + interval '1 minute')`,
      [group],
    );
    const started = Date.now();
    await expect(postbox.resetGroup({ group, to: 'latest' })).rejects.toMatchObject({ code: 'POSTBOX_ERR_GROUP_BUSY' });
    expect(Date.now() - started).toBeLessThan(2_000);
    await member.query('rollback');
    await expect(postbox.resetGroup({ group, to: 'latest' })).resolves.toMatchObject({ group });
  });

  it('a dry run changes nothing and its counts are those of the reset that follows; dead letters are left as they are', async () => {
    const group = 'dry-run';
    const all = await publishBatch(postbox, group, 6, 'd');
    expect(ids(await drain(postbox, group))).toEqual(all);
    await addDeadLetter(postbox.db, {
      group,
      handler: group,
      source: 'log',
      messageId: all[0] as string,
      topic: group,
      type: 't',
      key: null,
      payload: {},
      rawPayload: null,
      headers: {},
      sourcePosition: '1/1',
      attempts: 3,
      firstFailedAt: new Date(),
      lastFailedAt: new Date(),
      error: new Error('boom'),
    });
    const before = await stored(group);
    const dry = await postbox.resetGroup({ group, to: { messageId: all[2] as string }, dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, readAgain: 4, skipped: 0, openDeadLetters: 1, heldBy: [] });
    expect(await stored(group)).toEqual(before);
    const real = await postbox.resetGroup({ group, to: { messageId: all[2] as string } });
    expect({ ...real, dryRun: true }).toEqual(dry);
    expect(await postbox.deadLetters.list({ group })).toHaveLength(1);
  });

  describe('the CLI', () => {
    let env: Record<string, string>;
    beforeAll(() => {
      env = { DATABASE_URL: database.url };
    });

    it('prints per group and partition what a dry run would do, as a table and as JSON, and resets several groups at once', async () => {
      const [one, two] = ['cli-one', 'cli-two'];
      const first = await publishBatch(postbox, one, 3, 'one');
      await publishBatch(postbox, two, 2, 'two');
      await drain(postbox, one);
      await drain(postbox, two, 2);

      const dry = await cli(['groups', 'reset', one, two, '--to', 'earliest', '--dry-run'], env);
      expect(dry.stderr).toBe('');
      expect(dry.code).toBe(0);
      const text = lines(dry.stdout);
      expect(text[0]).toBe(`Group ${one} (${one}): reset to earliest (dry run: nothing changed)`);
      expect(text[1]).toMatch(/^PARTITION\s+FROM\s+TO\s+WOULD READ AGAIN\s+WOULD SKIP$/);
      expect(text[2]).toMatch(/^0\s+\d+\/\d+\s+0\/0\s+3\s+0$/);
      expect(text[3]).toBe('It would read 3 messages again and skip 0 messages. It has no open dead letters.');
      expect(text.filter((line) => line.startsWith(`Group ${two}`))).toHaveLength(1);
      expect(dry.stdout).toMatch(/\n1\s+\d+\/\d+\s+0\/0\s+\d+\s+0\n/);

      const json = await cli(['groups', 'reset', one, two, '--to', first[1] as string, '--json'], env);
      expect(json.code).toBe(1);
      expect(json.stderr).toMatch(/^postbox: POSTBOX_ERR_MESSAGE_NOT_IN_GROUP: .*cli-two/);

      const applied = await cli(['groups', 'reset', one, '--to', first[1] as string, '--json'], env);
      expect(applied.stderr).toBe('');
      const [report] = JSON.parse(applied.stdout) as {
        group: string;
        dryRun: boolean;
        readAgain: number;
        partitions: { to: { globalPosition: string } }[];
      }[];
      expect(report).toMatchObject({ group: one, dryRun: false, readAgain: 2, skipped: 0 });
      expect(typeof report?.partitions[0]?.to.globalPosition).toBe('string');
      expect(ids(await drain(postbox, one))).toEqual(first.slice(1));
    });

    it('refuses a --to it cannot read unambiguously, and a group in use', async () => {
      const bad = await cli(['groups', 'reset', 'cli-one', '--to', '2025-11-10 09:00'], env);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/^postbox: POSTBOX_ERR_USAGE: .*--to.*Expected earliest, latest, a time with its zone/);
      const missing = await cli(['groups', 'reset', 'cli-one'], env);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('--to');

      const group = 'cli-busy';
      const consumer = postbox.consumer({ group, topics: [group], owner: 'cli-worker', leaseTtlMs: 5_000, handleMessage: async () => {} });
      await consumer.start();
      try {
        await waitFor(() => consumer.state === 'active', 10_000, 'the consumer to hold the group');
        const busy = await cli(['groups', 'reset', group, '--to', 'latest'], env);
        expect(busy.code).toBe(1);
        expect(busy.stderr).toMatch(/^postbox: POSTBOX_ERR_GROUP_BUSY: Group cli-busy is still running in some process \(cli-worker\)/);
        const dry = await cli(['groups', 'reset', group, '--to', 'latest', '--dry-run'], env);
        expect(dry.code).toBe(0);
        expect(dry.stdout).toContain('It is running now in cli-worker');
      } finally {
        await consumer.stop();
      }
    });
  });
});

describe('groups reset --to', () => {
  it('reads keywords, message ids and times with a zone, and nothing else', () => {
    expect(resetTarget('earliest')).toBe('earliest');
    expect(resetTarget('latest')).toBe('latest');
    expect(resetTarget('01890A5D-AC96-774B-BCCE-B302099A8057')).toEqual({ messageId: '01890a5d-ac96-774b-bcce-b302099a8057' });
    expect(resetTarget('2025-11-10T09:00:00Z')).toEqual({ time: new Date('2025-11-10T09:00:00.000Z') });
    expect(resetTarget('2025-11-10T09:00Z')).toEqual({ time: new Date('2025-11-10T09:00:00.000Z') });
    // As psql prints a timestamptz.
    expect(resetTarget('2025-11-10 10:00:00.25+01')).toEqual({ time: new Date('2025-11-10T09:00:00.250Z') });
    expect(resetTarget('2025-11-10T04:30:00.123000-04:30')).toEqual({ time: new Date('2025-11-10T09:00:00.123Z') });
    for (const text of ['2025-11-10', '2025-11-10T09:00:00', '2025-02-30T00:00:00Z', '2025-11-10T09:00:00.1234Z', 'yesterday', '42', '']) {
      expect(() => resetTarget(text), text).toThrow();
    }
  });
});

describe('groups reset on PGlite', () => {
  it('resets a group to a time and to earliest', async () => {
    const postbox = await Postbox.create({ database: await pgliteDatabase(), migrate: 'auto' });
    try {
      const group = 'pglite-reset';
      const before = await publishBatch(postbox, group, 2, 'a');
      await delay(20);
      const { rows } = await postbox.db.query<{ now: Date }>('select clock_timestamp() as now');
      await delay(20);
      const after = await publishBatch(postbox, group, 3, 'b');
      expect(ids(await drain(postbox, group))).toEqual([...before, ...after]);
      await expect(postbox.resetGroup({ group, to: { time: new Date(rows[0]?.now as Date) } })).resolves.toMatchObject({ readAgain: 3 });
      expect(ids(await drain(postbox, group))).toEqual(after);
      await expect(postbox.resetGroup({ group, to: 'earliest' })).resolves.toMatchObject({ readAgain: 5 });
      expect(ids(await drain(postbox, group))).toEqual([...before, ...after]);
    } finally {
      await postbox.close(2_000);
      await postbox.db.close();
    }
  });
});
