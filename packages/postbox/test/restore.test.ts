import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureGroup, heartbeat, leaveGroup } from '../src/consumers/group-store.js';
import { addDeadLetter } from '../src/deadletters/dead-letter-store.js';
import { runDoctor } from '../src/diagnosis/doctor.js';
import type { LogMessage } from '../src/log/message.js';
import { partitionOf } from '../src/log/partition.js';
import { comparePositions, type LogPosition } from '../src/log/position.js';
import { readAfter } from '../src/log/read.js';
import { planRecoveryAfterRestore, recoverAfterRestore } from '../src/log/recover-after-restore.js';
import { applyRemap, planRemap, remappedColumns, unmappedTransactionIdColumns } from '../src/log/transaction-id-remap.js';
import { advanceTransactionIdsPast, nextTransactionId } from '../src/log/transaction-id-supply.js';
import { checkTransactionIds } from '../src/log/transaction-ids.js';
import { readiness } from '../src/observability/health.js';
import type { OutgoingMessage } from '../src/outbox/outgoing-message.js';
import { Postbox } from '../src/postbox.js';
import { asExecutor, type Executor } from '../src/sql/database.js';
import { createKafkaRelay } from '../src/transports/kafka/relay.js';
import { pgliteBackend } from './support/backends.js';
import { cli } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { propertyRuns } from './support/properties.js';
import { createScratchCluster, postgresBin, type ScratchCluster } from './support/scratch-cluster.js';
import { delay, waitFor } from './support/wait.js';

const run = promisify(execFile);
const cliBin = fileURLToPath(new URL('../src/cli/bin.ts', import.meta.url));
const behind = 'POSTBOX_ERR_TRANSACTION_IDS_BEHIND';

interface GroupSpec {
  group: string;
  topics: string[];
  partitions: number;
  startFrom?: 'earliest' | 'latest';
}

const groups = {
  midway: { group: 'midway', topics: ['orders', 'payments'], partitions: 1 },
  partitioned: { group: 'partitioned', topics: ['orders'], partitions: 4 },
  atEnd: { group: 'at-end', topics: ['orders', 'payments'], partitions: 1 },
  neverRead: { group: 'never-read', topics: ['payments'], partitions: 1 },
  fromLatest: { group: 'from-latest', topics: ['orders'], partitions: 1, startFrom: 'latest' },
  newAfterRecovery: { group: 'new-after-recovery', topics: ['orders', 'payments'], partitions: 1 },
  trimmed: { group: 'trimmed', topics: ['orders', 'payments'], partitions: 1 },
} satisfies Record<string, GroupSpec>;

let sequence = 0;
function message(topic: string, key: string): OutgoingMessage {
  sequence += 1;
  return { topic, type: 'test.event', key, payload: { sequence } };
}

function randomKey(index: number): string {
  return `key-${index % 12}`;
}

/** Messages written in separate transactions that overlap, so that position order and transaction order differ. */
async function publishInterleaved(url: string, postbox: Postbox, count: number): Promise<void> {
  const first = new pg.Client({ connectionString: url });
  const second = new pg.Client({ connectionString: url });
  await Promise.all([first.connect(), second.connect()]);
  try {
    for (let i = 0; i < count; i++) {
      await first.query('begin');
      await first.query('select pg_current_xact_id()');
      await second.query('begin');
      await postbox.enqueue(second, message('orders', randomKey(i)));
      await postbox.enqueue(first, [message('orders', randomKey(i + 1)), message('payments', randomKey(i + 2))]);
      await postbox.enqueue(second, message('payments', randomKey(i + 3)));
      await second.query('commit');
      await first.query('commit');
    }
  } finally {
    await Promise.all([first.end(), second.end()]);
  }
}

async function publishSingles(postbox: Postbox, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await postbox.publish(message(i % 3 === 0 ? 'payments' : 'orders', randomKey(i)));
}

/** Reads a group partially: stops once at least `atLeast` messages were handled (a batch may take it further). */
async function readPart(postbox: Postbox, spec: GroupSpec, atLeast: number): Promise<void> {
  let handled = 0;
  const consumer = postbox.consumer({
    ...spec,
    batchSize: 7,
    pollIntervalMs: 20,
    handleMessage: async () => {
      handled += 1;
    },
  });
  await consumer.start();
  try {
    await waitFor(() => handled >= atLeast, 60_000, `${spec.group} to handle ${atLeast}`);
  } finally {
    await consumer.stop();
  }
}

/** What a group has not handled yet, per partition, in the order it reads: the truth of the server it was read on. */
async function unhandled(db: Executor, spec: GroupSpec): Promise<Map<number, string[]>> {
  const { rows } = await db.query<{ partition: number; tx: string; pos: string; snapshot: string | null }>(
    `select p.partition, p.checkpoint_transaction_id::text as tx, p.checkpoint_position::text as pos, g.start_snapshot::text as snapshot
     from postbox.group_partitions p join postbox.consumer_groups g using (group_name) where group_name = $1 order by p.partition`,
    [spec.group],
  );
  const result = new Map<number, string[]>();
  for (const row of rows) {
    const messages = await readAfter(db, {
      topics: spec.topics,
      after: { transactionId: BigInt(row.tx), globalPosition: BigInt(row.pos) },
      limit: 100_000,
      skipVisibleIn: row.snapshot,
      partition: { index: Number(row.partition), count: spec.partitions },
    });
    result.set(
      Number(row.partition),
      messages.map((m) => m.id),
    );
  }
  return result;
}

/** Starts the group on the postbox and collects what it delivers per partition until `expected` arrived, and a while after. */
async function deliveries(postbox: Postbox, spec: GroupSpec, expected: number): Promise<Map<number, string[]>> {
  const received = new Map<number, string[]>();
  let count = 0;
  const consumer = postbox.consumer({
    ...spec,
    batchSize: 50,
    pollIntervalMs: 20,
    handleMessage: async (delivered: LogMessage, context) => {
      received.set(context.partition, [...(received.get(context.partition) ?? []), delivered.id]);
      count += 1;
    },
  });
  await consumer.start();
  try {
    await waitFor(() => count >= expected, 60_000, `${spec.group} to deliver ${expected}`);
    await delay(300);
  } finally {
    await consumer.stop();
  }
  return received;
}

/** The stored ids and positions of every place the recovery may change, to see that a dry run changes none. */
async function storedState(db: Executor): Promise<string> {
  const { rows } = await db.query<{ state: string }>(
    `select json_build_object(
       'messages', (select json_agg(json_build_array(global_position, transaction_id::text) order by global_position) from postbox.messages),
       'checkpoints', (select json_agg(json_build_array(group_name, partition, checkpoint_transaction_id::text, checkpoint_position)
                                       order by group_name, partition) from postbox.group_partitions),
       'snapshots', (select json_agg(json_build_array(group_name, start_snapshot::text) order by group_name) from postbox.consumer_groups),
       'deadLetters', (select json_agg(source_position order by id) from postbox.dead_letters),
       'parked', (select json_agg(transaction_id::text order by id) from postbox.parked_messages))::text as state`,
  );
  return rows[0]?.state ?? '';
}

/** Parks a copy of a log row for a group, as a route with `park` does with a message that keeps failing. */
async function parkCopy(db: Executor, group: string, globalPosition: string, messageId: string): Promise<void> {
  await db.query(
    `insert into postbox.parked_messages (group_name, handler, message_id, topic, type, key, bucket, payload, headers,
       transaction_id, global_position, created_at, status, attempts, next_attempt_at)
     select $1, $1, $3, topic, type, key, bucket, payload, headers, transaction_id, global_position, created_at, 'waiting', 1,
            now() + interval '1 hour'
     from postbox.messages where global_position = $2::bigint`,
    [group, globalPosition, messageId],
  );
}

describe('a log restored onto a server whose transaction ids are lower', () => {
  let cluster: ScratchCluster | undefined;
  let source: TestDatabase | undefined;
  let sourcePostbox: Postbox | undefined;
  let target: Postbox | undefined;
  let targetUrl = '';
  let dumpDir = '';
  const expected = new Map<string, Map<number, string[]>>();
  let wholeLog: string[] = [];
  const writtenBeforeRecovery: { id: string; topic: string; key: string }[] = [];
  const writtenAfterRecovery: { id: string; topic: string; key: string }[] = [];
  let deadLetterPosition = '';

  beforeAll(async () => {
    cluster = await createScratchCluster(5439);
    source = await createTestDatabase();
    sourcePostbox = await Postbox.create({ databaseUrl: source.url });
    // A server in use for a while is far ahead of a fresh cluster; a freshly installed one may not be yet.
    const fresh = new pg.Client({ connectionString: cluster.urlFor('postgres') });
    await fresh.connect();
    try {
      await advanceTransactionIdsPast(sourcePostbox.db, (await nextTransactionId(asExecutor(fresh))) + 50_000n);
    } finally {
      await fresh.end();
    }

    await publishSingles(sourcePostbox, 200);
    await publishInterleaved(source.url, sourcePostbox, 10);
    await sourcePostbox.publish([message('orders', 'key-1'), message('orders', 'key-2'), message('payments', 'key-1')]);
    await ensureGroup(sourcePostbox.db, {
      name: groups.neverRead.group,
      topics: groups.neverRead.topics,
      startFrom: 'earliest',
      ephemeral: false,
      partitions: 1,
    });

    // A `latest` group created while a message is still uncommitted: that message is the group's to read.
    const inFlight = new pg.Client({ connectionString: source.url });
    await inFlight.connect();
    await inFlight.query('begin');
    await sourcePostbox.enqueue(inFlight, message('orders', 'key-5'));
    await ensureGroup(sourcePostbox.db, {
      name: groups.fromLatest.group,
      topics: groups.fromLatest.topics,
      startFrom: 'latest',
      ephemeral: false,
      partitions: 1,
    });
    await inFlight.query('commit');
    await inFlight.end();

    await publishSingles(sourcePostbox, 300);
    await publishInterleaved(source.url, sourcePostbox, 10);

    await readPart(sourcePostbox, groups.midway, 200);
    await readPart(sourcePostbox, groups.partitioned, 150);
    await readPart(sourcePostbox, groups.fromLatest, 20);
    const atEnd = sourcePostbox.consumer({ ...groups.atEnd, handleMessage: async () => undefined });
    await atEnd.start();
    try {
      await waitFor(async () => [...(await unhandled(sourcePostbox!.db, groups.atEnd)).values()].flat().length === 0, 60_000);
    } finally {
      await atEnd.stop();
    }

    // A checkpoint whose transaction's rows retention has since removed: its id is no row's any more,
    // and the next transaction has a row at a lower position than the checkpoint's.
    const { rows: overlapping } = await sourcePostbox.db.query<{ tx: string; hi: string }>(
      `with t as (select transaction_id, min(global_position) as lo, max(global_position) as hi from postbox.messages group by 1),
       n as (select transaction_id, hi, lead(lo) over (order by transaction_id) as next_lo from t)
       select transaction_id::text as tx, hi::text from n where next_lo < hi order by transaction_id limit 1`,
    );
    const trimmedAt = overlapping[0]!;
    await ensureGroup(sourcePostbox.db, {
      name: groups.trimmed.group,
      topics: groups.trimmed.topics,
      startFrom: 'earliest',
      ephemeral: false,
      partitions: 1,
    });
    await sourcePostbox.db.query(
      `update postbox.group_partitions set checkpoint_transaction_id = $2::xid8, checkpoint_position = $3::bigint where group_name = $1`,
      [groups.trimmed.group, trimmedAt.tx, trimmedAt.hi],
    );
    await sourcePostbox.db.query('delete from postbox.messages where transaction_id = $1::xid8', [trimmedAt.tx]);

    const { rows: poison } = await sourcePostbox.db.query<{ id: string; topic: string; key: string; position: string }>(
      `select message_id::text as id, topic, key, transaction_id::text || '/' || global_position::text as position
       from postbox.messages where topic = 'orders' order by global_position offset 30 limit 1`,
    );
    const letter = poison[0]!;
    deadLetterPosition = letter.position;
    await addDeadLetter(sourcePostbox.db, {
      group: groups.midway.group,
      handler: groups.midway.group,
      source: 'log',
      messageId: letter.id,
      topic: letter.topic,
      type: 'test.event',
      key: letter.key,
      payload: {},
      rawPayload: null,
      headers: {},
      sourcePosition: letter.position,
      attempts: 3,
      firstFailedAt: new Date(),
      lastFailedAt: new Date(),
      error: new Error('poison'),
    });

    const { rows: handled } = await sourcePostbox.db.query<{ position: string; id: string }>(
      `select global_position::text as position, message_id::text as id from postbox.messages where topic = 'orders' order by global_position offset 10 limit 1`,
    );
    await parkCopy(sourcePostbox.db, groups.midway.group, handled[0]!.position, handled[0]!.id);

    for (const spec of [groups.midway, groups.partitioned, groups.atEnd, groups.neverRead, groups.fromLatest, groups.trimmed]) {
      expected.set(spec.group, await unhandled(sourcePostbox.db, spec));
    }
    wholeLog = (
      await readAfter(sourcePostbox.db, {
        topics: groups.newAfterRecovery.topics,
        after: { transactionId: 0n, globalPosition: 0n },
        limit: 100_000,
      })
    ).map((m) => m.id);

    dumpDir = mkdtempSync(join(tmpdir(), 'postbox-restore-'));
    const dump = join(dumpDir, 'log.dump');
    await run(`${postgresBin}/pg_dump`, ['-h', '127.0.0.1', '-p', '5432', '-U', 'postgres', '-Fc', '-f', dump, source.name]);
    await run(`${postgresBin}/psql`, [
      '-h',
      '127.0.0.1',
      '-p',
      String(cluster.port),
      '-U',
      'postgres',
      '-v',
      'ON_ERROR_STOP=1',
      '-c',
      `create database ${source.name}`,
    ]);
    await run(`${postgresBin}/pg_restore`, [
      '-h',
      '127.0.0.1',
      '-p',
      String(cluster.port),
      '-U',
      'postgres',
      '--exit-on-error',
      '-d',
      source.name,
      dump,
    ]);
    targetUrl = cluster.urlFor(source.name);
    target = await Postbox.create({ databaseUrl: targetUrl });
  }, 240_000);

  afterAll(async () => {
    await target?.close(2_000).catch(() => undefined);
    await sourcePostbox?.close(2_000).catch(() => undefined);
    await source?.drop().catch(() => undefined);
    if (dumpDir) rmSync(dumpDir, { recursive: true, force: true });
    await cluster?.drop();
  });

  it('starts from a restore whose server assigns lower ids than the log holds', async () => {
    const { rows } = await sourcePostbox!.db.query<{ highest: string; transactions: number }>(
      'select max(transaction_id)::text as highest, count(distinct transaction_id)::int as transactions from postbox.messages',
    );
    const next = await nextTransactionId(target!.db);
    expect(next).toBeLessThan(BigInt(rows[0]!.highest));
    // The log's transactions, remapped from 4 in steps of 2, reach past this server's next id: it must use up ids.
    expect(4n + 2n * BigInt(rows[0]!.transactions)).toBeGreaterThan(next + 100n);
    expect([...expected.get(groups.midway.group)!.values()].flat().length).toBeGreaterThan(0);
    expect([...expected.get(groups.partitioned.group)!.values()].flat().length).toBeGreaterThan(0);
    expect([...expected.get(groups.atEnd.group)!.values()].flat()).toEqual([]);
  });

  it('detects it, and every reader refuses with a typed error that names the fix', async () => {
    const check = await checkTransactionIds(target!.db);
    expect(check.status).toBe('behind');
    expect(check.highestStored!.value).toBeGreaterThanOrEqual(check.nextTransactionId);
    expect((await checkTransactionIds(sourcePostbox!.db)).status).toBe('ok');

    // Messages written on the restored server before the recovery: plain, half in a subtransaction, all in one.
    const client = new pg.Client({ connectionString: targetUrl });
    await client.connect();
    try {
      const write = async (messages: OutgoingMessage[], savepoint: 'none' | 'first' | 'all') => {
        await client.query('begin');
        for (const [index, outgoing] of messages.entries()) {
          const inSavepoint = savepoint === 'all' || (savepoint === 'first' && index === 0);
          if (inSavepoint) await client.query('savepoint s');
          const [id] = await target!.enqueue(client, outgoing);
          if (inSavepoint) await client.query('release savepoint s');
          writtenBeforeRecovery.push({ id: id!, topic: outgoing.topic, key: outgoing.key as string });
        }
        await client.query('commit');
      };
      await write([message('orders', 'key-1')], 'none');
      await write([message('orders', 'key-2'), message('payments', 'key-1')], 'first');
      await write([message('payments', 'key-3'), message('orders', 'key-1')], 'all');
      await write([message('orders', 'key-7')], 'none');
    } finally {
      await client.end();
    }

    const consumer = target!.consumer({ ...groups.midway, handleMessage: async () => undefined });
    await expect(consumer.start()).rejects.toMatchObject({ code: behind, message: expect.stringContaining('recover-after-restore') });
    const relay = createKafkaRelay(target!, { kafka: { brokers: ['127.0.0.1:9'] }, topics: ['orders'], idempotent: false });
    await expect(relay.start()).rejects.toMatchObject({ code: behind });
    await expect(target!.applyRetention({ olderThanMs: 1 })).rejects.toMatchObject({ code: behind });

    const env = { DATABASE_URL: targetUrl };
    const [tail, retry, status, statusJson] = await Promise.all([
      cli(['tail', '--topic', 'orders', '--group', groups.midway.group, '--limit', '1', '--timeout', '1'], env),
      cli(['dead-letters', 'retry', '--all', '--group', groups.midway.group], env),
      cli(['status'], env),
      cli(['status', '--json'], env),
    ]);
    expect(tail.code).toBe(1);
    expect(tail.stdout).toBe('');
    expect(tail.stderr).toMatch(
      /POSTBOX_ERR_TRANSACTION_IDS_BEHIND: .*next id it will assign is \d+, but .* holds \d+.*npx postbox recover-after-restore/,
    );
    expect(retry.code).toBe(1);
    expect(retry.stderr).toContain(behind);
    expect(status.code, status.stderr).toBe(1);
    expect(status.stdout.split('\n')[0]).toContain('TRANSACTION IDS BEHIND');
    expect(status.stdout).toContain(groups.midway.group);
    expect(statusJson.code).toBe(1);
    expect(statusJson.stderr).toMatch(/^postbox: POSTBOX_ERR_TRANSACTION_IDS_BEHIND: /);
    const shown = JSON.parse(statusJson.stdout) as {
      transactionIds: { status: string; nextTransactionId: string; highestStored: { value: string } };
    };
    expect(shown.transactionIds.status).toBe('behind');
    expect(BigInt(shown.transactionIds.highestStored.value)).toBeGreaterThanOrEqual(BigInt(shown.transactionIds.nextTransactionId));

    const ready = await readiness(target!.db, { maxLagMessages: 1_000_000 });
    expect(ready.status).toBe('unhealthy');
    expect(ready.checks.at(-1)).toMatchObject({
      name: 'transaction-ids',
      status: 'unhealthy',
      detail: expect.stringContaining('recover-after-restore'),
    });
    const doctor = await runDoctor(target!.db);
    expect(doctor.find((result) => result.check === 'transaction-ids')).toMatchObject({
      verdict: 'fail',
      finding: expect.stringContaining('restored or cut over from another server'),
      fix: expect.stringContaining('recover-after-restore --dry-run'),
    });
  }, 180_000);

  it('shows what it would change with --dry-run, and changes nothing', async () => {
    const before = await storedState(target!.db);
    const env = { DATABASE_URL: targetUrl };
    const [json, text] = await Promise.all([
      cli(['recover-after-restore', '--dry-run', '--json'], env),
      cli(['recover-after-restore', '--dry-run'], env),
    ]);
    expect(json.code, json.stderr).toBe(0);
    const plan = JSON.parse(json.stdout) as {
      needed: boolean;
      remap: {
        restoredRows: number;
        rowsWrittenHere: number;
        transactionsWrittenHere: number;
        checkpoints: number;
        startSnapshots: number;
        deadLetters: number;
      };
    };
    const { rows } = await sourcePostbox!.db.query<{ count: number }>('select count(*)::int as count from postbox.messages');
    expect(plan.needed).toBe(true);
    expect(plan.remap).toMatchObject({
      restoredRows: rows[0]!.count,
      rowsWrittenHere: writtenBeforeRecovery.length,
      transactionsWrittenHere: 4,
      startSnapshots: 1,
      deadLetters: 1,
      parkedMessages: 1,
    });
    expect(plan.remap.checkpoints).toBeGreaterThanOrEqual(6);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/Would change:[\s\S]*checkpoints[\s\S]*new ids\s+\d+ to \d+[\s\S]*Nothing was changed \(dry run\)\./);
    expect(await storedState(target!.db)).toBe(before);
  }, 180_000);

  it('steps back, changing nothing, while an older transaction is open or a lock on the log is held', async () => {
    const before = await storedState(target!.db);
    const other = new pg.Client({ connectionString: targetUrl });
    await other.connect();
    try {
      await other.query('begin');
      const { rows } = await other.query<{ pid: number }>('select pg_backend_pid() as pid, pg_current_xact_id()');
      await expect(recoverAfterRestore(target!.db)).rejects.toMatchObject({
        code: 'POSTBOX_ERR_RECOVERY_BLOCKED',
        message: expect.stringContaining(`pid ${rows[0]!.pid}`),
      });
      await other.query('rollback');
      await other.query('begin');
      await other.query('lock table postbox.messages in access share mode');
      await expect(recoverAfterRestore(target!.db, { lockTimeoutMs: 200 })).rejects.toMatchObject({
        code: 'POSTBOX_ERR_RECOVERY_BLOCKED',
        message: expect.stringContaining('held a lock on the Postbox tables'),
      });
      await other.query('rollback');
    } finally {
      await other.end();
    }
    expect(await storedState(target!.db)).toBe(before);
    expect((await checkTransactionIds(target!.db)).status).toBe('behind');
    // It had made room for the new ids before it stepped back: the server's next id is past them.
    const plan = await planRecoveryAfterRestore(target!.db);
    expect(plan.transactionIdsToUseUp).toBe(0n);
    expect(await nextTransactionId(target!.db)).toBeGreaterThan(plan.remap!.highestNewId!);
  }, 180_000);

  it('refuses while a group has a live member, and with --wait recovers once it is gone', async () => {
    await heartbeat(target!.db, groups.midway.group, 'a-live-member', 120_000);
    await expect(recoverAfterRestore(target!.db)).rejects.toMatchObject({ code: 'POSTBOX_ERR_GROUP_BUSY' });
    const refused = await cli(['recover-after-restore'], { DATABASE_URL: targetUrl });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/POSTBOX_ERR_GROUP_BUSY: Consumer groups are running: midway/);

    const recovering = spawn(
      process.execPath,
      ['--conditions=postbox-source', '--import', 'tsx', cliBin, 'recover-after-restore', '--wait', '2m', '--json'],
      {
        cwd: fileURLToPath(new URL('../../../', import.meta.url)),
        env: { ...process.env, DATABASE_URL: targetUrl },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    recovering.stdout.on('data', (chunk) => {
      stdout += String(chunk);
    });
    recovering.stderr.on('data', (chunk) => {
      stderr += String(chunk);
    });
    const exit = new Promise<number | null>((resolve) => recovering.once('close', resolve));
    try {
      await waitFor(() => stderr.includes('waiting: Consumer groups are running: midway'), 60_000, 'the recovery to wait');
    } finally {
      await leaveGroup(target!.db, groups.midway.group, 'a-live-member');
    }
    expect(await exit, stderr).toBe(0);
    const result = JSON.parse(stdout) as {
      recovered: boolean;
      transactionIdsUsedUp: string;
      usedUpPerSecond: number;
      after: { status: string };
    };
    expect(result.recovered).toBe(true);
    expect(result.after.status).toBe('ok');
    expect((await checkTransactionIds(target!.db)).status).toBe('ok');
  }, 180_000);

  it('delivers to every group exactly what it had not handled, in order, then the messages written before and after the recovery', async () => {
    for (const outgoing of [message('orders', 'key-2'), message('payments', 'key-3'), message('orders', 'key-9')]) {
      const [id] = await target!.publish(outgoing);
      writtenAfterRecovery.push({ id: id!, topic: outgoing.topic, key: outgoing.key as string });
    }
    const written = [...writtenBeforeRecovery, ...writtenAfterRecovery];
    const specs: GroupSpec[] = [
      groups.midway,
      groups.partitioned,
      groups.atEnd,
      groups.neverRead,
      groups.fromLatest,
      groups.trimmed,
      groups.newAfterRecovery,
    ];
    for (const spec of specs) {
      const restored = expected.get(spec.group) ?? new Map([[0, wholeLog]]);
      const wanted = new Map<number, string[]>();
      for (let partition = 0; partition < spec.partitions; partition++) {
        const after = written.filter((m) => spec.topics.includes(m.topic) && partitionOf(m.key, m.id, spec.partitions) === partition);
        const ids = [...(restored.get(partition) ?? []), ...after.map((m) => m.id)];
        if (ids.length > 0) wanted.set(partition, ids);
      }
      const total = [...wanted.values()].flat().length;
      const delivered = await deliveries(target!, spec, total);
      expect(delivered, `group ${spec.group}`).toEqual(wanted);
    }
    const { rows } = await target!.db.query<{ stored: string; row: string }>(
      `select d.source_position as stored, m.transaction_id::text || '/' || m.global_position::text as row
       from postbox.dead_letters d join postbox.messages m on m.global_position = split_part(d.source_position, '/', 2)::bigint`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.stored).toBe(rows[0]!.row);
    expect(rows[0]!.stored).not.toBe(deadLetterPosition);
    const { rows: parked } = await target!.db.query<{ parked: string; row: string }>(
      `select p.transaction_id::text as parked, m.transaction_id::text as row
       from postbox.parked_messages p join postbox.messages m using (global_position)`,
    );
    expect(parked).toHaveLength(1);
    expect(parked[0]!.parked).toBe(parked[0]!.row);
  }, 180_000);

  it('does nothing, and says so, when run again', async () => {
    const before = await storedState(target!.db);
    const again = await recoverAfterRestore(target!.db);
    expect(again.recovered).toBe(false);
    expect(again.transactionIdsUsedUp).toBe(0n);
    const cliAgain = await cli(['recover-after-restore'], { DATABASE_URL: targetUrl });
    expect(cliAgain.code, cliAgain.stderr).toBe(0);
    expect(cliAgain.stdout).toMatch(/^Nothing to do: the next transaction id of this server \(\d+\) is above every id the log stores/);
    expect(await storedState(target!.db)).toBe(before);
    expect((await readiness(target!.db, { maxLagMessages: 1_000_000 })).checks.map((check) => check.name)).not.toContain('transaction-ids');
    expect((await runDoctor(target!.db)).find((result) => result.check === 'transaction-ids')?.verdict).toBe('ok');
  }, 180_000);

  it('uses up transaction ids quickly when the server must catch up', async () => {
    const next = await nextTransactionId(target!.db);
    const advance = await advanceTransactionIdsPast(target!.db, next + 50_000n);
    expect(advance.nextTransactionId).toBeGreaterThan(next + 50_000n);
    const perSecond = Math.round(Number(advance.usedUp) / (advance.elapsedMs / 1_000));
    console.info(`used up ${advance.usedUp} transaction ids in ${Math.round(advance.elapsedMs)} ms: ${perSecond}/s`);
    expect(perSecond).toBeGreaterThan(1_000);
  });
});

interface Row {
  position: bigint;
  before: bigint;
  after: bigint;
  writtenHere: boolean;
}

/** A restore simulated in one transaction: restored rows copied with foreign ids in one statement, then rows written here in subtransactions. */
const scenario = fc
  .record({
    restoredIds: fc.uniqueArray(
      fc.oneof(fc.bigInt({ min: 1_000_000_000_000n, max: 1_000_000_000_060n }), fc.bigInt({ min: 5n, max: 60n })),
      {
        minLength: 2,
        maxLength: 12,
      },
    ),
    rowPicks: fc.array(fc.nat(), { minLength: 2, maxLength: 40 }),
    writtenHere: fc.array(fc.nat({ max: 2 }), { maxLength: 4 }),
    checkpoints: fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant('row' as const), pick: fc.nat(), shift: fc.integer({ min: -1, max: 1 }) }),
        fc.record({
          kind: fc.constant('between' as const),
          pick: fc.nat(),
          shift: fc.integer({ min: -2, max: 2 }),
          position: fc.nat({ max: 60 }),
        }),
        fc.record({ kind: fc.constant('zero' as const) }),
      ),
      { minLength: 1, maxLength: 8 },
    ),
    snapshotPicks: fc.tuple(fc.nat(), fc.nat(), fc.array(fc.nat(), { maxLength: 5 })),
    letterPicks: fc.array(fc.nat(), { maxLength: 4 }),
    parkedPicks: fc.array(fc.nat(), { maxLength: 3 }),
  })
  .map((input) => ({ ...input, restoredIds: [...input.restoredIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) }));

describe('the remap on its own', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('knows every column of the Postbox schema that stores a transaction id', async () => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const columns = await unmappedTransactionIdColumns(asExecutor(client));
      expect(columns.filter((column) => column.startsWith('postbox.'))).toEqual([]);
      const { rows } = await client.query<{ name: string }>(
        `select format('postbox.%s.%s', c.relname, a.attname) as name
         from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'postbox' and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
           and a.atttypid in ('xid8'::regtype, 'xid'::regtype, 'pg_snapshot'::regtype, 'txid_snapshot'::regtype)`,
      );
      for (const row of rows) expect(remappedColumns).toContain(row.name);
    } finally {
      await client.end();
    }
  });

  it('keeps every comparison between rows, checkpoints and start snapshots, and puts rows written here after all of them', async () => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const tx = asExecutor(client);
    try {
      await fc.assert(
        fc.asyncProperty(scenario, async (input) => {
          await client.query('begin');
          try {
            const rowIds = input.rowPicks.map(
              (pick, index) => input.restoredIds[(index < input.restoredIds.length ? index : pick) % input.restoredIds.length]!,
            );
            await client.query('savepoint restore');
            await client.query(
              `insert into postbox.messages (transaction_id, topic, message_id, type, key, payload)
               select t.id::xid8, 'orders', gen_random_uuid(), 'copied', 'k', '{}'::jsonb from unnest($1::text[]) with ordinality as t(id, n) order by t.n`,
              [rowIds.map(String)],
            );
            await client.query('release savepoint restore');
            for (const [index, count] of input.writtenHere.entries()) {
              await client.query(`savepoint here_${index}`);
              for (let i = 0; i <= count; i++) {
                await client.query(
                  `insert into postbox.messages (topic, message_id, type, key, payload) values ('orders', gen_random_uuid(), 'here', 'k', '{}')`,
                );
              }
              await client.query(`release savepoint here_${index}`);
            }
            const { rows: stored } = await client.query<{ position: string; id: string }>(
              'select global_position::text as position, transaction_id::text as id from postbox.messages order by global_position',
            );
            const restoredRows = stored.slice(0, rowIds.length);
            const firstPosition = BigInt(stored[0]!.position);
            const pickRow = (pick: number) => restoredRows[pick % restoredRows.length]!;

            const checkpoints: LogPosition[] = input.checkpoints.map((checkpoint) => {
              if (checkpoint.kind === 'zero') return { transactionId: 0n, globalPosition: 0n };
              const row = pickRow(checkpoint.pick);
              if (checkpoint.kind === 'row')
                return { transactionId: BigInt(row.id), globalPosition: BigInt(row.position) + BigInt(checkpoint.shift) };
              const id = BigInt(row.id) + BigInt(checkpoint.shift);
              return { transactionId: id < 3n ? 3n : id, globalPosition: firstPosition + BigInt(checkpoint.position) - 1n };
            });
            for (const [index, checkpoint] of checkpoints.entries()) {
              await client.query(`insert into postbox.consumer_groups (group_name, topics) values ($1, '{orders}')`, [`g${index}`]);
              await client.query(
                'insert into postbox.group_partitions (group_name, partition, checkpoint_transaction_id, checkpoint_position) values ($1, 0, $2::xid8, $3)',
                [`g${index}`, String(checkpoint.transactionId), String(checkpoint.globalPosition)],
              );
            }
            const [low, high, inProgress] = input.snapshotPicks;
            const bounds = [BigInt(pickRow(low).id), BigInt(pickRow(high).id) + 1n].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) as [
              bigint,
              bigint,
            ];
            const xip = [
              ...new Set(inProgress.map((pick) => BigInt(pickRow(pick).id)).filter((id) => id >= bounds[0] && id < bounds[1])),
            ].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
            await client.query(
              `insert into postbox.consumer_groups (group_name, topics, start_snapshot) values ('latest', '{orders}', $1::pg_snapshot)`,
              [`${bounds[0]}:${bounds[1]}:${xip.join(',')}`],
            );
            const letters = input.letterPicks.map((pick) => pickRow(pick));
            for (const [index, row] of letters.entries()) {
              await client.query(
                `insert into postbox.dead_letters (group_name, handler, source, message_id, topic, source_position, error_message, attempts, first_failed_at, last_failed_at)
                 values ('g0', 'h', 'log', $1, 'orders', $2, 'failed', 1, now(), now())`,
                [`letter-${index}`, `${row.id}/${row.position}`],
              );
            }

            const parked = input.parkedPicks.map((pick) => pickRow(pick));
            for (const [index, row] of parked.entries()) await parkCopy(tx, 'g0', row.position, `parked-${index}`);

            const visibility = async () =>
              (
                await client.query<{ position: string; visible: boolean }>(
                  `select m.global_position::text as position, pg_visible_in_snapshot(m.transaction_id, g.start_snapshot) as visible
                   from postbox.messages m, postbox.consumer_groups g where g.group_name = 'latest' order by m.global_position`,
                )
              ).rows;
            const visibleBefore = await visibility();

            const plan = await planRemap(tx);
            await applyRemap(tx, plan);

            const { rows: remapped } = await client.query<{ position: string; id: string }>(
              'select global_position::text as position, transaction_id::text as id from postbox.messages order by global_position',
            );
            const rows: Row[] = remapped.map((row, index) => ({
              position: BigInt(row.position),
              before: BigInt(stored[index]!.id),
              after: BigInt(row.id),
              writtenHere: index >= rowIds.length,
            }));
            expect(plan.restoredRows).toBe(rowIds.length);
            expect(plan.rowsWrittenHere).toBe(stored.length - rowIds.length);
            expect(plan.lowestNewId).toBeGreaterThanOrEqual(3n);
            expect(plan.highestNewId).toBeLessThanOrEqual(4n + 2n * BigInt(plan.restoredTransactions + plan.transactionsWrittenHere));

            const { rows: newCheckpoints } = await client.query<{ id: string; position: string }>(
              `select checkpoint_transaction_id::text as id, checkpoint_position::text as position from postbox.group_partitions
               order by substring(group_name from 2)::int`,
            );
            const sign = (value: number) => Math.sign(value);
            for (const [index, checkpoint] of checkpoints.entries()) {
              const after = { transactionId: BigInt(newCheckpoints[index]!.id), globalPosition: BigInt(newCheckpoints[index]!.position) };
              expect(after.globalPosition).toBe(checkpoint.globalPosition);
              for (const row of rows) {
                const now = comparePositions({ transactionId: row.after, globalPosition: row.position }, after);
                if (row.writtenHere) {
                  expect(now).toBe(1);
                } else {
                  const then = comparePositions({ transactionId: row.before, globalPosition: row.position }, checkpoint);
                  expect(sign(now), `row ${row.position} against checkpoint ${index}`).toBe(sign(then));
                }
              }
            }
            const order = (key: 'before' | 'after') =>
              rows
                .filter((row) => !row.writtenHere)
                .sort((a, b) =>
                  comparePositions(
                    { transactionId: a[key], globalPosition: a.position },
                    { transactionId: b[key], globalPosition: b.position },
                  ),
                )
                .map((row) => row.position);
            expect(order('after')).toEqual(order('before'));
            const highestRestored = rows.filter((row) => !row.writtenHere).reduce((max, row) => (row.after > max ? row.after : max), 0n);
            for (const row of rows.filter((candidate) => candidate.writtenHere)) expect(row.after).toBeGreaterThan(highestRestored);

            const visibleAfter = await visibility();
            for (const [index, row] of rows.entries()) {
              expect(visibleAfter[index]!.visible, `visibility of row ${row.position}`).toBe(
                row.writtenHere ? false : visibleBefore[index]!.visible,
              );
            }
            const { rows: newLetters } = await client.query<{ position: string }>(
              `select source_position as position from postbox.dead_letters order by id`,
            );
            for (const [index, letter] of letters.entries()) {
              const row = rows.find((candidate) => candidate.position === BigInt(letter.position))!;
              expect(newLetters[index]!.position).toBe(`${row.after}/${row.position}`);
            }
            const { rows: newParked } = await client.query<{ id: string; position: string }>(
              `select transaction_id::text as id, global_position::text as position from postbox.parked_messages order by id`,
            );
            expect(newParked).toHaveLength(parked.length);
            for (const copy of newParked) {
              const row = rows.find((candidate) => candidate.position === BigInt(copy.position))!;
              expect(copy.id).toBe(String(row.after));
            }
          } finally {
            await client.query('rollback');
          }
        }),
        propertyRuns(40),
      );
    } finally {
      await client.end();
    }
  }, 180_000);
});

describe('detection on embedded PGlite', () => {
  it('finds the ids current, lets a consumer start, and a recovery does nothing', async () => {
    const handle = await pgliteBackend.open();
    try {
      const { postbox } = handle;
      await postbox.publish(message('orders', 'key-1'));
      expect((await postbox.checkTransactionIds()).status).toBe('ok');
      let handled = 0;
      const consumer = postbox.consumer({
        group: 'embedded',
        topics: ['orders'],
        pollIntervalMs: 20,
        handleMessage: async () => {
          handled += 1;
        },
      });
      await consumer.start();
      await waitFor(() => handled === 1);
      await consumer.stop();
      const result = await postbox.recoverAfterRestore();
      expect(result.recovered).toBe(false);
    } finally {
      await handle.cleanup();
    }
  }, 180_000);
});
