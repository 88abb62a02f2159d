import { afterEach, describe, expect, it } from 'vitest';
import { SchemaVersionError } from '../src/errors/postbox-error.js';
import { Postbox } from '../src/postbox.js';
import { latestVersion, loadMigrations } from '../src/schema/migrations.js';
import { migrate, migrationsAsSql } from '../src/schema/migrator.js';
import { pgliteDatabase } from '../src/sql/pglite-database.js';
import { postgresDatabase } from '../src/sql/postgres-database.js';
import { exited, spawnTs } from './support/child.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';

const databases: TestDatabase[] = [];
async function emptyDatabase(): Promise<TestDatabase> {
  const database = await createTestDatabase({ migrated: false });
  databases.push(database);
  return database;
}

afterEach(async () => {
  await Promise.all(databases.splice(0).map((d) => d.drop()));
});

function output(child: ReturnType<typeof spawnTs>): Promise<string> {
  let text = '';
  child.stdout?.on('data', (chunk) => {
    text += String(chunk);
  });
  return exited(child).then((code) => {
    if (code !== 0) throw new Error(`migrate process exited with ${code}`);
    return text;
  });
}

describe('migrations', () => {
  it('lets ten processes migrate at once: all succeed and the schema is applied once', async () => {
    const database = await emptyDatabase();
    const outputs = await Promise.all(
      Array.from({ length: 10 }, () => output(spawnTs('fixtures/migrate-process.ts', { DATABASE_URL: database.url }))),
    );
    const results = outputs.map((text) => JSON.parse(text.trim()) as { applied: unknown[]; version: number });
    expect(results.every((r) => r.version === latestVersion())).toBe(true);
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    const db = postgresDatabase(database.url);
    try {
      const { rows } = await db.query<{ version: number }>('select version from postbox.schema_migrations order by version');
      expect(rows.map((r) => r.version)).toEqual(loadMigrations().map((m) => m.version));
    } finally {
      await db.close();
    }
  });

  it('refuses to run on an unmigrated database and says what to do', async () => {
    const database = await emptyDatabase();
    const error = await Postbox.create({ databaseUrl: database.url }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaVersionError);
    expect(error).toMatchObject({ code: 'POSTBOX_ERR_SCHEMA_NOT_MIGRATED' });
    expect((error as Error).message).toContain('postbox migrate');
  });

  it('refuses to run, or migrate, an older library against a newer schema', async () => {
    const database = await emptyDatabase();
    const db = postgresDatabase(database.url);
    try {
      await migrate(db);
      await db.query(`insert into postbox.schema_migrations (version, name, checksum) values (9999, 'from_the_future', 'x')`);
      const error = await Postbox.create({ databaseUrl: database.url }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'POSTBOX_ERR_SCHEMA_TOO_NEW' });
      expect((error as Error).message).toMatch(/version 9999.*Upgrade the package/);
      await expect(migrate(db)).rejects.toMatchObject({ code: 'POSTBOX_ERR_SCHEMA_TOO_NEW' });
    } finally {
      await db.close();
    }
  });

  it('refuses a database whose applied migration differs from the shipped file', async () => {
    const database = await emptyDatabase();
    const db = postgresDatabase(database.url);
    try {
      await migrate(db);
      await db.query(`update postbox.schema_migrations set checksum = 'edited' where version = 1`);
      await expect(migrate(db)).rejects.toMatchObject({ code: 'POSTBOX_ERR_MIGRATION_CHANGED' });
    } finally {
      await db.close();
    }
  });

  it('gives up with a retriable error when another process holds the lock too long', async () => {
    const database = await emptyDatabase();
    const holder = postgresDatabase(database.url);
    const db = postgresDatabase(database.url);
    try {
      await holder.transaction(async (tx) => {
        await tx.query('select pg_advisory_xact_lock(7170412355001)');
        const error = await migrate(db, { lockTimeoutMs: 200 }).catch((e: unknown) => e);
        expect(error).toMatchObject({ code: 'POSTBOX_ERR_MIGRATION_LOCK_TIMEOUT', retriable: true });
      });
    } finally {
      await holder.close();
      await db.close();
    }
  });

  it('prints plain SQL that builds the same schema the migrator does', async () => {
    const sql = migrationsAsSql();
    expect(sql).toContain('create table postbox.messages');
    const printed = await pgliteDatabase();
    try {
      await printed.exec(sql);
      // The printed script records its versions, so the library accepts the schema.
      const postbox = await Postbox.create({ database: printed, migrate: 'check' });
      await postbox.publish({ topic: 't', type: 't', payload: 1 });
      await postbox.close();
    } finally {
      await printed.close();
    }
  });

  it('applies migrations automatically on embedded PGlite and keeps data across a restart', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'postbox-'));
    try {
      const first = await Postbox.create({ dataDir: dir });
      await first.publish({ topic: 'persist', type: 't', payload: 'kept' });
      await first.close();
      const second = await Postbox.create({ dataDir: dir });
      const { rows } = await second.db.query<{ payload: unknown }>('select payload from postbox.messages');
      await second.close();
      expect(rows).toEqual([{ payload: 'kept' }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
