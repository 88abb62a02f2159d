import { defaults } from '../config/defaults.js';
import { SchemaVersionError } from '../errors/postbox-error.js';
import type { Database, Executor } from '../sql/database.js';
import { latestVersion, loadMigrations, type Migration } from './migrations.js';

/** Any constant works; it only has to be the same in every process that migrates. */
const migrationLockKey = 7_170_412_355_001;

const versionTable = `
create schema if not exists postbox;
create table if not exists postbox.schema_migrations (
  version integer primary key,
  name text not null,
  checksum text not null,
  applied_at timestamptz not null default now()
);`;

export interface MigrateResult {
  applied: { version: number; name: string }[];
  version: number;
}

function bookkeeping(migration: Migration): string {
  return `insert into postbox.schema_migrations (version, name, checksum) values (${migration.version}, '${migration.name}', '${migration.checksum}') on conflict (version) do nothing;`;
}

async function appliedMigrations(tx: Executor) {
  const { rows } = await tx.query<{ version: number; name: string; checksum: string }>(
    'select version, name, checksum from postbox.schema_migrations order by version',
  );
  return rows;
}

/**
 * Applies the shipped migrations that are missing, in one transaction under an advisory lock,
 * so any number of processes may call it at once: one applies, the others find nothing to do.
 */
export async function migrate(db: Database, options: { lockTimeoutMs?: number } = {}): Promise<MigrateResult> {
  const lockTimeoutMs = options.lockTimeoutMs ?? defaults.migrations.lockTimeoutMs;
  try {
    return await db.transaction(async (tx) => {
      await tx.query(`select set_config('lock_timeout', $1, true)`, [`${Math.round(lockTimeoutMs)}ms`]);
      await tx.query('select pg_advisory_xact_lock($1)', [migrationLockKey]);
      await tx.exec(versionTable);
      const applied = await appliedMigrations(tx);
      const known = loadMigrations();
      for (const row of applied) {
        const shipped = known.find((m) => m.version === row.version);
        if (shipped && shipped.checksum !== row.checksum) {
          throw new SchemaVersionError(
            'POSTBOX_ERR_MIGRATION_CHANGED',
            `Migration ${row.version} (${row.name}) was applied from different SQL than this library ships. Never edit an applied migration; add a new one.`,
            { version: row.version },
          );
        }
      }
      assertNotNewer(applied.at(-1)?.version ?? 0);
      const done = new Set(applied.map((row) => row.version));
      const newlyApplied: MigrateResult['applied'] = [];
      for (const migration of known) {
        if (done.has(migration.version)) continue;
        await tx.exec(migration.sql);
        await tx.exec(bookkeeping(migration));
        newlyApplied.push({ version: migration.version, name: migration.name });
      }
      return { applied: newlyApplied, version: latestVersion() };
    });
  } catch (error) {
    if ((error as { code?: string }).code === '55P03') {
      throw new SchemaVersionError(
        'POSTBOX_ERR_MIGRATION_LOCK_TIMEOUT',
        `Another process held the migration lock for over ${lockTimeoutMs} ms. Try again once it has finished.`,
        {},
        { cause: error },
      );
    }
    throw error;
  }
}

function assertNotNewer(version: number): void {
  if (version > latestVersion()) {
    throw new SchemaVersionError(
      'POSTBOX_ERR_SCHEMA_TOO_NEW',
      `The database schema is at version ${version}, newer than this library's ${latestVersion()}. Upgrade the postbox package; never run an older library against a newer schema.`,
      { databaseVersion: version, libraryVersion: latestVersion() },
    );
  }
}

/** The schema version recorded in the database, or undefined when Postbox was never migrated there. */
export async function schemaVersion(db: Executor): Promise<number | undefined> {
  const { rows } = await db.query<{ present: boolean }>(`select to_regclass('postbox.schema_migrations') is not null as present`);
  if (!rows[0]?.present) return undefined;
  const result = await db.query<{ version: number | null }>('select max(version) as version from postbox.schema_migrations');
  return result.rows[0]?.version ?? undefined;
}

/** Refuses to go on unless the database schema is exactly the one this library ships. */
export async function assertSchemaCurrent(db: Executor): Promise<void> {
  const version = await schemaVersion(db);
  const latest = latestVersion();
  if (version === undefined) {
    throw new SchemaVersionError(
      'POSTBOX_ERR_SCHEMA_NOT_MIGRATED',
      `The database has no Postbox schema. Run \`npx postbox migrate\` (or print the SQL with \`npx postbox migrate --print\` for your migration tool), or pass { migrate: 'auto' }.`,
      { libraryVersion: latest },
    );
  }
  assertNotNewer(version);
  if (version < latest) {
    throw new SchemaVersionError(
      'POSTBOX_ERR_SCHEMA_OUTDATED',
      `The database schema is at version ${version} but this library needs ${latest}. Run \`npx postbox migrate\`.`,
      { databaseVersion: version, libraryVersion: latest },
    );
  }
}

/** The whole schema as plain SQL, with the bookkeeping rows, for Flyway, golang-migrate or psql. */
export function migrationsAsSql(): string {
  const parts = [`-- Postbox schema, version ${latestVersion()}. Apply in order, once.`, versionTable.trim()];
  for (const migration of loadMigrations()) {
    parts.push(
      `-- migration ${String(migration.version).padStart(4, '0')}_${migration.name}`,
      migration.sql.trim(),
      bookkeeping(migration),
    );
  }
  return `${parts.join('\n\n')}\n`;
}
