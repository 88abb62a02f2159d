import { randomUUID } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaults } from '../src/config/defaults.js';
import {
  describeHolder,
  holdersWorthShowing,
  type WatermarkHolder,
  watermarkDelayOf,
  watermarkDelaySeconds,
  watermarkHolders,
} from '../src/log/watermark.js';
import { readiness } from '../src/observability/health.js';
import { Postbox } from '../src/postbox.js';
import { pgliteDatabase } from '../src/sql/pglite-database.js';
import { cli } from './support/cli.js';
import { holdTransaction } from './support/held-transaction.js';
import { createTestDatabase, type TestDatabase, urlFor, withAdmin } from './support/postgres.js';
import { waitFor } from './support/wait.js';

const ofPid = (holders: readonly WatermarkHolder[], pid: number) => holders.find((holder) => holder.pid === pid);

const maxPreparedTransactions = await withAdmin(async (client) => {
  const { rows } = await client.query<{ max_prepared_transactions: string }>('show max_prepared_transactions');
  return Number(rows[0]?.max_prepared_transactions);
});

describe('watermark holders on a PostgreSQL server', () => {
  let database: TestDatabase;
  let other: TestDatabase;
  let postbox: Postbox;

  beforeAll(async () => {
    database = await createTestDatabase();
    // A second database of the same server: its transactions hold this database's readers back too.
    other = await createTestDatabase({ migrated: false });
    postbox = await Postbox.create({ databaseUrl: database.url });
  });

  afterAll(async () => {
    await postbox?.close(2_000);
    await database?.drop();
    await other?.drop();
  });

  it('names a writing transaction of another database and an idle-in-transaction session of this one, with who and what', async () => {
    const elsewhere = await holdTransaction(other.url, ['create table holders_probe (id integer)', 'insert into holders_probe values (1)']);
    const idle = await holdTransaction(database.url, [`select postbox.publish('holders', 'held', '{}'::jsonb)`]);
    const readOnly = await holdTransaction(database.url, ['select count(*) from postbox.messages']);
    try {
      const holders = await watermarkHolders(postbox.db);
      const fromOther = ofPid(holders, elsewhere.pid);
      expect(fromOther).toMatchObject({
        kind: 'session',
        database: other.name,
        user: 'postgres',
        applicationName: elsewhere.applicationName,
        clientAddress: '127.0.0.1',
        state: 'idle in transaction',
        query: 'insert into holders_probe values (1)',
        gid: null,
      });
      expect(fromOther?.queryStart).toBeInstanceOf(Date);
      expect(fromOther?.transactionSeconds).toBeGreaterThanOrEqual(0);
      expect(ofPid(holders, idle.pid)).toMatchObject({ database: database.name, state: 'idle in transaction' });
      // A transaction that wrote nothing has no transaction id: it holds no reader back.
      expect(ofPid(holders, readOnly.pid)).toBeUndefined();
      // Exactly one holder sets the watermark, and the list starts with it.
      expect(holders.filter((holder) => holder.holdsWatermark)).toHaveLength(1);
      expect(holders[0]?.holdsWatermark).toBe(true);

      await waitFor(async () => ((await watermarkHolders(postbox.db)).find((h) => h.pid === elsewhere.pid)?.transactionSeconds ?? 0) > 1.2);
      const later = await watermarkHolders(postbox.db);
      expect(await watermarkDelaySeconds(postbox.db)).toBeGreaterThan(1.2);
      expect(watermarkDelayOf(later)).toBeGreaterThanOrEqual(ofPid(later, elsewhere.pid)?.transactionSeconds ?? Number.POSITIVE_INFINITY);
      expect(holdersWorthShowing(later, 1).map((holder) => holder.pid)).toEqual(expect.arrayContaining([elsewhere.pid, idle.pid]));
    } finally {
      await Promise.all([elsewhere.end(), idle.end(), readOnly.end()]);
    }
    const after = await watermarkHolders(postbox.db);
    expect(ofPid(after, elsewhere.pid)).toBeUndefined();
    expect(ofPid(after, idle.pid)).toBeUndefined();
  });

  it('shows the holders in status, as text and in --json, once older than the threshold', async () => {
    const elsewhere = await holdTransaction(other.url, ['create temporary table holders_status (id integer)']);
    const idle = await holdTransaction(database.url, [`select postbox.publish('holders', 'held', '{}'::jsonb)`]);
    try {
      const minSeconds = defaults.watermark.showHoldersAfterSeconds;
      await waitFor(
        async () => ((await watermarkHolders(postbox.db)).find((h) => h.pid === idle.pid)?.transactionSeconds ?? 0) > minSeconds + 0.2,
        minSeconds * 1_000 + 5_000,
        'the held transactions to pass the threshold of status',
      );
      const json = await cli(['status', '--json'], { DATABASE_URL: database.url });
      expect(json.stderr).toBe('');
      expect(json.code).toBe(0);
      const status = JSON.parse(json.stdout) as { watermarkDelaySeconds: number; watermarkHolders: WatermarkHolder[] };
      expect(status.watermarkDelaySeconds).toBeGreaterThan(minSeconds);
      expect(ofPid(status.watermarkHolders, elsewhere.pid)).toMatchObject({
        database: other.name,
        applicationName: elsewhere.applicationName,
        state: 'idle in transaction',
      });
      expect(ofPid(status.watermarkHolders, idle.pid)).toMatchObject({ database: database.name });
      expect(status.watermarkHolders.every((holder) => (holder.transactionSeconds ?? 0) >= minSeconds || holder.holdsWatermark)).toBe(true);

      const text = await cli(['status'], { DATABASE_URL: database.url });
      expect(text.code).toBe(0);
      expect(text.stdout).toContain('Held back by (* holds the watermark):');
      const row = text.stdout.split('\n').find((line) => line.includes(elsewhere.applicationName));
      expect(row).toMatch(
        new RegExp(`^${elsewhere.pid}\\*?\\s+${other.name}\\s+postgres\\s+${elsewhere.applicationName}\\s+127\\.0\\.0\\.1\\s`),
      );
      expect(row).toContain('idle in transaction');
      expect(row).toContain('create temporary table holders_status');
    } finally {
      await Promise.all([elsewhere.end(), idle.end()]);
    }
  });

  it('reports readiness degraded while a transaction holds readers back too long, naming it', async () => {
    const elsewhere = await holdTransaction(other.url, ['create temporary table holders_health (id integer)']);
    try {
      await waitFor(async () => ((await watermarkHolders(postbox.db)).find((h) => h.pid === elsewhere.pid)?.transactionSeconds ?? 0) > 1.2);
      const report = await readiness(postbox.db, { maxLagMessages: 10, maxWatermarkDelaySeconds: 1 });
      expect(report.status).toBe('degraded');
      const check = report.checks.find((entry) => entry.name === 'watermark');
      expect(check?.status).toBe('degraded');
      expect(check?.detail).toMatch(/^readers held back \d+s \(over 1s\) by: /);
      expect(check?.detail).toContain(
        `pid ${elsewhere.pid} in database ${other.name} (user postgres, application "${elsewhere.applicationName}", client 127.0.0.1), transaction open `,
      );
      expect(check?.detail).toMatch(
        /idle in transaction, last query started \d{4}-\d\d-\d\dT[^:]+:\d\d:\d\d\.\d+Z: "create temporary table holders_health/,
      );
    } finally {
      await elsewhere.end();
    }
    const after = await readiness(postbox.db, { maxLagMessages: 10, maxWatermarkDelaySeconds: 1 });
    expect(after.checks.find((entry) => entry.name === 'watermark')?.detail ?? '').not.toContain(`pid ${elsewhere.pid} `);
  });

  it('lists a session of a role that may not see its times, with its age unknown rather than zero', async () => {
    const role = `holders_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    await withAdmin((client) => client.query(`create role ${role} login`));
    const held = await holdTransaction(database.url, [`select postbox.publish('holders', 'held', '{}'::jsonb)`]);
    const url = new URL(urlFor(database.name));
    url.username = role;
    const limited = new pg.Client({ connectionString: url.toString() });
    await limited.connect();
    try {
      const holders = await watermarkHolders({
        query: async (text, params) => {
          const result = await limited.query(text, params as unknown[]);
          return { rows: result.rows, rowCount: result.rowCount ?? 0 };
        },
        exec: async () => undefined,
      });
      const hidden = ofPid(holders, held.pid);
      expect(hidden).toMatchObject({ database: database.name, user: 'postgres', transactionSeconds: null, state: null });
      expect(describeHolder(hidden as WatermarkHolder)).toContain('transaction age unknown (needs pg_read_all_stats)');
      expect(watermarkDelayOf([hidden as WatermarkHolder])).toBe(0);
    } finally {
      await limited.end();
      await held.end();
      await withAdmin((client) => client.query(`drop role ${role}`));
    }
  });

  // Servers disable prepared transactions by default (max_prepared_transactions = 0): there the refusal
  // is checked instead, and the PGlite test below, which enables them, checks that they are named.
  it('names a prepared transaction of the server, or is refused one where the server disables them', async () => {
    const gid = `holders-${randomUUID()}`;
    const client = new pg.Client({ connectionString: other.url });
    await client.connect();
    try {
      await client.query('begin');
      await client.query('create table holders_prepared (id integer)');
      if (maxPreparedTransactions === 0) {
        await expect(client.query(`prepare transaction '${gid}'`)).rejects.toMatchObject({
          code: '55000',
          message: 'prepared transactions are disabled',
        });
        return;
      }
      await client.query(`prepare transaction '${gid}'`);
      const holder = (await watermarkHolders(postbox.db)).find((entry) => entry.gid === gid);
      expect(holder).toMatchObject({ kind: 'prepared', pid: null, database: other.name, user: 'postgres', state: 'prepared' });
    } finally {
      await client.query('rollback').catch(() => undefined);
      await client.query(`rollback prepared '${gid}'`).catch(() => undefined);
      await client.end();
    }
  });
});

describe('watermark holders on PGlite', () => {
  it('names a prepared transaction, which holds readers back until it is resolved', async () => {
    const pglite = await PGlite.create({ postgresqlconf: ['max_prepared_transactions = 4'] });
    const db = await pgliteDatabase(undefined, pglite);
    const postbox = await Postbox.create({ database: db, migrate: 'auto' });
    try {
      expect(await watermarkHolders(postbox.db)).toEqual([]);
      await pglite.exec(`begin; select postbox.publish('prepared', 'held', '{}'::jsonb); prepare transaction 'pglite-held'`);
      await postbox.publish({ topic: 'prepared', type: 'after', payload: {} });
      const holders = await watermarkHolders(postbox.db);
      expect(holders).toHaveLength(1);
      expect(holders[0]).toMatchObject({
        kind: 'prepared',
        pid: null,
        gid: 'pglite-held',
        database: 'postgres',
        state: 'prepared',
        holdsWatermark: true,
      });
      expect(holders[0]?.transactionSeconds).toBeGreaterThanOrEqual(0);
      expect(describeHolder(holders[0] as WatermarkHolder)).toMatch(
        /^prepared transaction "pglite-held" in database postgres \(owner \w+\), prepared /,
      );
      // The message committed after it waits behind it: this is what holding the watermark means.
      expect(await postbox.db.query(`select * from postbox.read_after(array['prepared'], '0'::xid8, 0, 10)`)).toMatchObject({ rows: [] });
      await pglite.exec(`commit prepared 'pglite-held'`);
      expect(await watermarkHolders(postbox.db)).toEqual([]);
      expect((await postbox.db.query(`select type from postbox.read_after(array['prepared'], '0'::xid8, 0, 10)`)).rows).toEqual([
        { type: 'held' },
        { type: 'after' },
      ]);
    } finally {
      await postbox.close(2_000);
      await pglite.close();
    }
  });
});
