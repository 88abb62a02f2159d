import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { acquirePartitions, ensureGroup, heartbeat } from '../src/consumers/group-store.js';
import { addDeadLetter } from '../src/deadletters/dead-letter-store.js';
import { type DoctorResult, doctorChecks, doctorFailed, runDoctor } from '../src/diagnosis/doctor.js';
import { Postbox } from '../src/postbox.js';
import { latestVersion, postboxMigrations } from '../src/schema/migrations.js';
import { pgliteDatabase } from '../src/sql/pglite-database.js';
import { postgresDatabase } from '../src/sql/postgres-database.js';
import { cli, lines } from './support/cli.js';
import { holdTransaction } from './support/held-transaction.js';
import { createTestDatabase, type TestDatabase, withAdmin } from './support/postgres.js';
import { delay, waitFor } from './support/wait.js';

const latest = latestVersion(postboxMigrations);
const checkNames = [
  'schema',
  'transaction-ids',
  'read-plan',
  'autovacuum',
  'long-transactions',
  'stalled-groups',
  'dead-letters',
  'unowned-partitions',
];

const serverAutovacuum = await withAdmin(async (client) => {
  const { rows } = await client.query<{ autovacuum: string }>('show autovacuum');
  return rows[0]?.autovacuum;
});

function resultOf(results: readonly DoctorResult[], check: string): DoctorResult {
  const result = results.find((entry) => entry.check === check);
  if (!result) throw new Error(`no result for ${check}`);
  return result;
}

const cleanups: (() => Promise<void>)[] = [];

/** A migrated database of its own, with a Postbox on it; closed and dropped after the file. */
async function freshPostbox(): Promise<{ postbox: Postbox; database: TestDatabase }> {
  const database = await createTestDatabase();
  const postbox = await Postbox.create({ databaseUrl: database.url });
  cleanups.push(async () => {
    await postbox.close(2_000);
    await database.drop();
  });
  return { postbox, database };
}

async function publishSome(postbox: Postbox, topic: string, count: number): Promise<void> {
  await postbox.publish(Array.from({ length: count }, (_, i) => ({ topic, type: 't', key: `k${i}`, payload: { i } })));
}

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe.concurrent('postbox doctor', () => {
  it(`finds nothing wrong on a healthy database and exits 0 (autovacuum warns only because this server has it ${serverAutovacuum})`, async ({
    expect,
  }) => {
    const { postbox, database } = await freshPostbox();
    await publishSome(postbox, 'healthy', 50);
    const seen: unknown[] = [];
    const consumer = postbox.consumer({ group: 'healthy-g', topics: ['healthy'], handleBatch: async (batch) => void seen.push(...batch) });
    await consumer.start();
    await waitFor(() => seen.length === 50, 10_000, 'the group to catch up');
    await consumer.stop(2_000);

    const results = await runDoctor(postbox.db);
    expect(results.map((result) => result.check)).toEqual(checkNames);
    expect(doctorChecks.map((check) => check.check)).toEqual(checkNames);
    for (const result of results) {
      if (result.check === 'autovacuum' && serverAutovacuum !== 'on') {
        expect(result).toMatchObject({ verdict: 'warn', finding: 'autovacuum is off on the server' });
        expect(result.fix).toContain('autovacuum = on');
      } else {
        expect(result, result.check).toMatchObject({ verdict: 'ok' });
        expect(result.fix).toBeUndefined();
      }
    }
    expect(resultOf(results, 'read-plan').finding).toMatch(
      /^2 reads \(group healthy-g, every stream\), with custom and generic plans, stay on /,
    );
    expect(resultOf(results, 'read-plan').finding).toContain('messages_reader_idx');
    expect(doctorFailed(results)).toBe(false);

    const run = await cli(['doctor'], { DATABASE_URL: database.url });
    expect(run.code).toBe(0);
    const printed = lines(run.stdout);
    expect(printed).toHaveLength(checkNames.length);
    expect(printed[0]).toBe(`ok    schema version: migrated to version ${latest}, the latest this library ships`);
    for (const line of printed) expect(line).toMatch(/^(ok {2}|warn) {2}\S/);
    expect(run.stderr).toMatch(new RegExp(`^postbox: ${checkNames.length} checks: \\d ok, \\d warn, 0 fail\\.\\n$`));

    const json = await cli(['doctor', '--json'], { DATABASE_URL: database.url });
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as DoctorResult[];
    expect(parsed.map((result) => [result.check, result.verdict])).toEqual(results.map((result) => [result.check, result.verdict]));
  });

  it('fails a database without the schema, names `postbox migrate`, leaves the schema checks unchecked, and exits 1', async ({
    expect,
  }) => {
    const empty = await createTestDatabase({ migrated: false });
    cleanups.push(() => empty.drop());
    const run = await cli(['doctor'], { DATABASE_URL: empty.url });
    expect(run.code).toBe(1);
    const printed = lines(run.stdout);
    expect(printed[0]).toBe('fail  schema version: this database has no Postbox schema. Fix: run `npx postbox migrate`');
    expect(printed.filter((line) => line.includes('not checked: the schema is not current. Fix: run `npx postbox migrate`'))).toHaveLength(
      doctorChecks.filter((check) => check.needsSchema).length,
    );
    expect(printed.find((line) => line.includes('long transactions:'))).not.toContain('not checked');
    expect(run.stderr).toContain('1 fail');

    const json = await cli(['doctor', '--json'], { DATABASE_URL: empty.url });
    expect(json.code).toBe(1);
    expect((JSON.parse(json.stdout) as DoctorResult[])[0]).toMatchObject({ check: 'schema', verdict: 'fail' });
  });

  it('fails a schema older or newer than the library, with the fix for each', async ({ expect }) => {
    const { postbox } = await freshPostbox();
    await postbox.db.query('delete from postbox.schema_migrations where version = $1', [latest]);
    const older = resultOf(await runDoctor(postbox.db), 'schema');
    expect(older).toEqual({
      check: 'schema',
      title: 'schema version',
      verdict: 'fail',
      finding: `the schema is at version ${latest - 1}, this library needs ${latest}`,
      fix: 'run `npx postbox migrate`',
    });
    await postbox.db.query(
      `insert into postbox.schema_migrations (version, name, checksum) values ($1, 'latest', 'x'), (9999, 'future', 'x')`,
      [latest],
    );
    const newer = resultOf(await runDoctor(postbox.db), 'schema');
    expect(newer).toMatchObject({ verdict: 'fail', finding: `the schema is at version 9999, newer than this library's ${latest}` });
    expect(newer.fix).toContain('upgrade the postbox package');
  });

  it('fails when the read index is gone: the read sorts what another index gives it, or scans the table (exit 1)', async ({ expect }) => {
    const { postbox, database } = await freshPostbox();
    await publishSome(postbox, 'planned', 200);
    await postbox.db.query('drop index postbox.messages_reader_idx');
    const run = await cli(['doctor'], { DATABASE_URL: database.url });
    expect(run.code).toBe(1);
    const line = lines(run.stdout).find((entry) => entry.includes('read path plan:'));
    expect(line).toMatch(
      /^fail {2}read path plan: the read path does not stay on an index in log order: topic planned \(custom plan\): sorts the rows /,
    );
    expect(line).toContain('topic planned (generic plan)');
    expect(line).toContain('Fix: compare the indexes of postbox.messages with `postbox migrate --print`');

    await postbox.db.query('drop index postbox.messages_partition_reader_idx');
    const scanned = resultOf(await runDoctor(postbox.db), 'read-plan');
    expect(scanned.verdict).toBe('fail');
    expect(scanned.finding).toContain('topic planned (custom plan): Seq Scan on postbox.messages');
  });

  it('reads the scan counters where auto_explain is refused (a role that is no superuser): warns, and fails on a sequential scan', async ({
    expect,
  }) => {
    const { postbox, database } = await freshPostbox();
    await publishSome(postbox, 'counted', 100);
    const role = `doctor_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    await postbox.db.exec(
      `create role ${role} login; grant usage on schema postbox to ${role}; grant select on all tables in schema postbox to ${role};`,
    );
    const url = new URL(database.url);
    url.username = role;
    const limited = postgresDatabase(url.toString());
    cleanups.push(async () => {
      await limited.close();
      // The role's grants live in the test database; they go before the role can.
      await postbox.db.query(`drop owned by ${role}`);
      await withAdmin((client) => client.query(`drop role ${role}`));
    });
    const warned = resultOf(await runDoctor(limited), 'read-plan');
    expect(warned.verdict).toBe('warn');
    expect(warned.finding).toMatch(
      /^2 reads made \d+ index scans and no sequential scan of postbox\.messages, but their plans could not be inspected \(auto_explain is unavailable: /,
    );
    expect(warned.fix).toContain('as a superuser');

    await postbox.db.exec('drop index postbox.messages_reader_idx; drop index postbox.messages_partition_reader_idx');
    const failed = resultOf(await runDoctor(limited), 'read-plan');
    expect(failed.verdict).toBe('fail');
    expect(failed.finding).toContain('topic counted (custom plan): 1 sequential scan of postbox.messages');
  });

  it('warns on dead letters that wait, with the command that lists them, and still exits 0', async ({ expect }) => {
    const { postbox } = await freshPostbox();
    const now = new Date();
    for (const messageId of ['m-1', 'm-2']) {
      await addDeadLetter(postbox.db, {
        group: 'billing',
        handler: 'billing',
        source: 'log',
        messageId,
        topic: 'invoices',
        type: 't',
        key: null,
        payload: {},
        rawPayload: null,
        headers: {},
        sourcePosition: '1/1',
        attempts: 3,
        firstFailedAt: now,
        lastFailedAt: now,
        error: new Error('card declined'),
      });
    }
    const results = await runDoctor(postbox.db);
    expect(resultOf(results, 'dead-letters')).toMatchObject({ verdict: 'warn', finding: '2 dead letters wait: billing 2 pending' });
    expect(resultOf(results, 'dead-letters').fix).toMatch(/^`postbox dead-letters list`/);
    expect(doctorFailed(results)).toBe(false);
  });

  it('names a long transaction (warn past one threshold, fail past the other) with the way to end it', async ({ expect }) => {
    const { postbox, database } = await freshPostbox();
    const held = await holdTransaction(database.url, [`select postbox.publish('long', 't', '{}'::jsonb)`]);
    cleanups.push(() => held.end());
    await delay(1_200);
    const warned = resultOf(
      await runDoctor(postbox.db, { longTransactionWarnSeconds: 1, longTransactionFailSeconds: 3_600 }),
      'long-transactions',
    );
    expect(warned.verdict).toBe('warn');
    expect(warned.finding).toContain(
      `pid ${held.pid} in database ${database.name} (user postgres, application "${held.applicationName}", client 127.0.0.1)`,
    );
    expect(warned.finding).toContain('idle in transaction');
    expect(warned.fix).toContain(`SELECT pg_terminate_backend(${held.pid})`);

    const failed = await runDoctor(postbox.db, { longTransactionWarnSeconds: 0.5, longTransactionFailSeconds: 1 });
    expect(resultOf(failed, 'long-transactions').verdict).toBe('fail');
    expect(doctorFailed(failed)).toBe(true);
    await held.end();
    const after = resultOf(
      await runDoctor(postbox.db, { longTransactionWarnSeconds: 1, longTransactionFailSeconds: 3_600 }),
      'long-transactions',
    );
    expect(after.finding).not.toContain(`pid ${held.pid} `);
  });

  it('warns on a group nobody runs with messages waiting, and fails one that runs but does not move', async ({ expect }) => {
    const { postbox } = await freshPostbox();
    await ensureGroup(postbox.db, { name: 'stuck', topics: ['stuck'], startFrom: 'earliest', ephemeral: false, partitions: 1 });
    await publishSome(postbox, 'stuck', 3);
    await delay(300);
    const unattended = resultOf(await runDoctor(postbox.db, { stalledAfterSeconds: 0.2 }), 'stalled-groups');
    expect(unattended.verdict).toBe('warn');
    expect(unattended.finding).toMatch(/^run by no process: stuck \(3 messages waiting, the oldest for \d+s\)$/);
    expect(unattended.fix).toContain('`postbox groups delete stuck`');

    await heartbeat(postbox.db, 'stuck', 'member-a', 60_000);
    expect(await acquirePartitions(postbox.db, 'stuck', 'member-a', 60_000, [0], 1)).toHaveLength(1);
    const stuck = resultOf(await runDoctor(postbox.db, { stalledAfterSeconds: 0.2 }), 'stalled-groups');
    expect(stuck.verdict).toBe('fail');
    expect(stuck.finding).toMatch(/^running but not moving for over 0\.2s: stuck \(3 messages waiting, the oldest for \d+s\)$/);
    // Within the threshold, a group that runs is only behind.
    expect(resultOf(await runDoctor(postbox.db), 'stalled-groups')).toMatchObject({
      verdict: 'ok',
      finding: '1 group behind, each moving or within 300s',
    });
  });

  it('fails a partition left without an owner while its group runs, and warns on a partitioned group with no member', async ({
    expect,
  }) => {
    const { postbox } = await freshPostbox();
    await ensureGroup(postbox.db, { name: 'split', topics: ['split'], startFrom: 'earliest', ephemeral: false, partitions: 2 });
    const idle = resultOf(await runDoctor(postbox.db), 'unowned-partitions');
    expect(idle).toMatchObject({
      verdict: 'warn',
      finding: 'partitioned groups with no live member, so none of their partitions is read: split (2 partitions)',
    });

    await heartbeat(postbox.db, 'split', 'member-a', 60_000);
    expect(await acquirePartitions(postbox.db, 'split', 'member-a', 60_000, [0], 1)).toHaveLength(1);
    await delay(300);
    const stranded = resultOf(await runDoctor(postbox.db, { leaseTtlMs: 200 }), 'unowned-partitions');
    expect(stranded.verdict).toBe('fail');
    expect(stranded.finding).toMatch(/^split: 1 partition \(1\) without an owner for up to \d+s while 1 live member runs it$/);
    expect(stranded.fix).toContain('postbox groups list');
    // Within a lease time the partition may still be on its way to a member.
    expect(resultOf(await runDoctor(postbox.db), 'unowned-partitions').verdict).toBe('ok');
  });

  it('warns when autovacuum is disabled on the log, or a large log was never vacuumed', async ({ expect }) => {
    const { postbox } = await freshPostbox();
    await publishSome(postbox, 'vacuum', 20);
    const never = resultOf(await runDoctor(postbox.db, { autovacuumMinRows: 10 }), 'autovacuum');
    expect(never.verdict).toBe('warn');
    expect(never.finding).toMatch(/postbox\.messages holds \d+ rows and was never vacuumed or analysed/);
    expect(never.fix).toContain('VACUUM (ANALYZE) postbox.messages');
    await postbox.db.query('vacuum (analyze) postbox.messages');
    await waitFor(
      async () => !resultOf(await runDoctor(postbox.db, { autovacuumMinRows: 10 }), 'autovacuum').finding.includes('never'),
      10_000,
      'the statistics to show the vacuum',
    );

    await postbox.db.query('alter table postbox.messages set (autovacuum_enabled = off)');
    const disabled = resultOf(await runDoctor(postbox.db), 'autovacuum');
    expect(disabled.verdict).toBe('warn');
    expect(disabled.finding).toContain('autovacuum is disabled on postbox.messages (autovacuum_enabled = false)');
    expect(disabled.fix).toContain('ALTER TABLE postbox.messages RESET (autovacuum_enabled)');
  });

  it('refuses thresholds that make no sense, naming the option', async ({ expect }) => {
    const { postbox } = await freshPostbox();
    await expect(runDoctor(postbox.db, { stalledAfterSeconds: -1 })).rejects.toMatchObject({
      code: 'POSTBOX_ERR_BAD_OPTION',
      details: { option: 'stalledAfterSeconds' },
    });
    await expect(runDoctor(postbox.db, { planGroups: 0.5 })).rejects.toMatchObject({ code: 'POSTBOX_ERR_BAD_OPTION' });
    await expect(runDoctor(postbox.db, { longTransactionWarnSeconds: 60, longTransactionFailSeconds: 30 })).rejects.toMatchObject({
      code: 'POSTBOX_ERR_BAD_OPTION',
      details: { option: 'longTransactionFailSeconds' },
    });
  });
});

describe('postbox doctor on PGlite', () => {
  it('runs every check; the plan is judged by the scan counters, since PGlite has no auto_explain', async () => {
    const postbox = await Postbox.create({ database: await pgliteDatabase(), migrate: 'auto' });
    try {
      await publishSome(postbox, 'embedded', 30);
      const results = await runDoctor(postbox.db);
      expect(results.map((result) => result.check)).toEqual(checkNames);
      expect(doctorFailed(results)).toBe(false);
      expect(resultOf(results, 'read-plan')).toMatchObject({ verdict: 'warn' });
      expect(resultOf(results, 'read-plan').finding).toContain('no sequential scan of postbox.messages');
      expect(resultOf(results, 'autovacuum')).toMatchObject({ verdict: 'ok' });
      expect(resultOf(results, 'autovacuum').finding).toMatch(/^embedded PGlite \(no autovacuum worker\)/);
      for (const check of ['schema', 'long-transactions', 'stalled-groups', 'dead-letters', 'unowned-partitions']) {
        expect(resultOf(results, check).verdict, check).toBe('ok');
      }

      await postbox.db.exec('drop index postbox.messages_reader_idx; drop index postbox.messages_partition_reader_idx');
      const scanned = resultOf(await runDoctor(postbox.db), 'read-plan');
      expect(scanned.verdict).toBe('fail');
      expect(scanned.finding).toContain('topic embedded (custom plan): 1 sequential scan of postbox.messages');
    } finally {
      await postbox.close(2_000);
      await postbox.db.close();
    }
  });
});
