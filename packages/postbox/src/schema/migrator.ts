import { defaults } from '../config/defaults.js';
import { SchemaVersionError, ValidationError } from '../errors/postbox-error.js';
import type { Database, Executor } from '../sql/database.js';
import { quoteIdentifier } from '../sql/identifier.js';
import { latestVersion, loadMigrations, type Migration, type MigrationSet, postboxMigrations } from './migrations.js';

/**
 * The set's schema and version table, checked and quoted. A set need not come from
 * defineMigrationSet, so its names are checked here, where they become SQL text.
 */
function versionTableOf(set: MigrationSet): { schema: string; table: string } {
  const schema = quoteIdentifier(set.versionSchema, 'versionSchema');
  const parts = typeof set.versionTable === 'string' ? set.versionTable.split('.') : [];
  if (parts.length !== 2 || parts[0] !== set.versionSchema) {
    throw new ValidationError(
      'POSTBOX_ERR_BAD_OPTION',
      `versionTable must be "<versionSchema>.<table>" (got ${JSON.stringify(String(set.versionTable).slice(0, 80))}).`,
      { option: 'versionTable' },
    );
  }
  return { schema, table: `${schema}.${quoteIdentifier(parts[1], 'versionTable')}` };
}

function versionTableSql(set: MigrationSet): string {
  const { schema, table } = versionTableOf(set);
  return `
create schema if not exists ${schema};
create table if not exists ${table} (
  version integer primary key,
  name text not null,
  checksum text not null,
  applied_at timestamptz not null default now()
);`;
}

export interface MigrateResult {
  applied: { version: number; name: string }[];
  version: number;
}

export interface MigrateOptions {
  lockTimeoutMs?: number;
  set?: MigrationSet;
}

function bookkeeping(set: MigrationSet, migration: Migration): string {
  return `insert into ${versionTableOf(set).table} (version, name, checksum) values (${migration.version}, '${migration.name}', '${migration.checksum}') on conflict (version) do nothing;`;
}

async function appliedMigrations(tx: Executor, set: MigrationSet) {
  const { rows } = await tx.query<{ version: number; name: string; checksum: string }>(
    `select version, name, checksum from ${versionTableOf(set).table} order by version`,
  );
  return rows;
}

/**
 * Applies the missing migrations of a set, in one transaction under an advisory lock, so any
 * number of processes may call it at once: one applies, the others find nothing to do.
 */
export async function migrate(db: Database, options: MigrateOptions = {}): Promise<MigrateResult> {
  const set = options.set ?? postboxMigrations;
  versionTableOf(set);
  const lockTimeoutMs = options.lockTimeoutMs ?? defaults.migrations.lockTimeoutMs;
  try {
    return await db.transaction(async (tx) => {
      await tx.query(`select set_config('lock_timeout', $1, true)`, [`${Math.round(lockTimeoutMs)}ms`]);
      await tx.query('select pg_advisory_xact_lock($1)', [set.lockKey]);
      await tx.exec(versionTableSql(set));
      const applied = await appliedMigrations(tx, set);
      const known = loadMigrations(set);
      for (const row of applied) {
        const shipped = known.find((m) => m.version === row.version);
        if (shipped && shipped.checksum !== row.checksum) {
          throw new SchemaVersionError(
            'POSTBOX_ERR_MIGRATION_CHANGED',
            `Migration ${row.version} (${row.name}) of the ${set.name} schema was applied from different SQL than the file shipped now. Never edit an applied migration; add a new one.`,
            { version: row.version },
          );
        }
      }
      assertNotNewer(set, applied.at(-1)?.version ?? 0);
      const done = new Set(applied.map((row) => row.version));
      const newlyApplied: MigrateResult['applied'] = [];
      for (const migration of known) {
        if (done.has(migration.version)) continue;
        await tx.exec(migration.sql);
        await tx.exec(bookkeeping(set, migration));
        newlyApplied.push({ version: migration.version, name: migration.name });
      }
      return { applied: newlyApplied, version: latestVersion(set) };
    });
  } catch (error) {
    if ((error as { code?: string }).code === '55P03') {
      throw new SchemaVersionError(
        'POSTBOX_ERR_MIGRATION_LOCK_TIMEOUT',
        `Another process held the ${set.name} migration lock for over ${lockTimeoutMs} ms. Try again once it has finished.`,
        {},
        { cause: error },
      );
    }
    throw error;
  }
}

function assertNotNewer(set: MigrationSet, version: number): void {
  if (version > latestVersion(set)) {
    throw new SchemaVersionError(
      'POSTBOX_ERR_SCHEMA_TOO_NEW',
      `The ${set.name} database schema is at version ${version}, newer than this code's ${latestVersion(set)}. Upgrade the package; never run older code against a newer schema.`,
      { databaseVersion: version, libraryVersion: latestVersion(set) },
    );
  }
}

/** The schema version recorded in the database, or undefined when the set was never migrated there. */
export async function schemaVersion(db: Executor, set: MigrationSet = postboxMigrations): Promise<number | undefined> {
  const { table } = versionTableOf(set);
  const { rows } = await db.query<{ present: boolean }>(`select to_regclass($1) is not null as present`, [table]);
  if (!rows[0]?.present) return undefined;
  const result = await db.query<{ version: number | null }>(`select max(version) as version from ${table}`);
  return result.rows[0]?.version ?? undefined;
}

/** Refuses to go on unless the database holds exactly the schema of the set's shipped migrations. */
export async function assertSchemaCurrent(db: Executor, set: MigrationSet = postboxMigrations): Promise<void> {
  const version = await schemaVersion(db, set);
  const latest = latestVersion(set);
  if (version === undefined) {
    throw new SchemaVersionError(
      'POSTBOX_ERR_SCHEMA_NOT_MIGRATED',
      `The database has no ${set.name} schema. Run \`${set.migrateCommand}\` (or print the SQL with \`${set.migrateCommand} --print\` for your migration tool), or pass { migrate: 'auto' }.`,
      { libraryVersion: latest },
    );
  }
  assertNotNewer(set, version);
  if (version < latest) {
    throw new SchemaVersionError(
      'POSTBOX_ERR_SCHEMA_OUTDATED',
      `The ${set.name} database schema is at version ${version} but this code needs ${latest}. Run \`${set.migrateCommand}\`.`,
      { databaseVersion: version, libraryVersion: latest },
    );
  }
}

/** The whole schema of a set as plain SQL, with its bookkeeping rows, for Flyway, golang-migrate or psql. */
export function migrationsAsSql(set: MigrationSet = postboxMigrations): string {
  const parts = [`-- ${set.name} schema, version ${latestVersion(set)}. Apply in order, once.`, versionTableSql(set).trim()];
  for (const migration of loadMigrations(set)) {
    parts.push(
      `-- migration ${String(migration.version).padStart(4, '0')}_${migration.name}`,
      migration.sql.trim(),
      bookkeeping(set, migration),
    );
  }
  return `${parts.join('\n\n')}\n`;
}
