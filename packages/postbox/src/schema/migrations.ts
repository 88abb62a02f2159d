import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkIdentifier } from '../sql/identifier.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

/**
 * A numbered series of `.sql` files with its own version table and advisory lock. Postbox ships
 * one; an application can run its own series through the same migrator.
 */
export interface MigrationSet {
  /** Used in messages: "the <name> schema". */
  name: string;
  /** Folder of `NNNN_name.sql` files. */
  directory: string;
  /** Schema-qualified version table, e.g. `postbox.schema_migrations`. */
  versionTable: string;
  /** Schema the version table lives in; created if missing. */
  versionSchema: string;
  /** Any constant that every process migrating this set agrees on. */
  lockKey: number;
  /** Shown in errors as the command that migrates this set. */
  migrateCommand: string;
}

export function defineMigrationSet(options: {
  name: string;
  directory: string | URL;
  schema: string;
  table?: string;
  lockKey: number;
  migrateCommand: string;
}): MigrationSet {
  const table = checkIdentifier(options.table ?? 'schema_migrations', 'table');
  checkIdentifier(options.schema, 'schema');
  return {
    name: options.name,
    directory: options.directory instanceof URL ? fileURLToPath(options.directory) : options.directory,
    versionTable: `${options.schema}.${table}`,
    versionSchema: options.schema,
    lockKey: options.lockKey,
    migrateCommand: options.migrateCommand,
  };
}

/** Postbox's own schema. */
export const postboxMigrations: MigrationSet = defineMigrationSet({
  name: 'Postbox',
  directory: new URL('../../migrations/', import.meta.url),
  schema: 'postbox',
  lockKey: 7_170_412_355_001,
  migrateCommand: 'npx postbox migrate',
});

const fileName = /^(\d{4})_([a-z0-9_]+)\.sql$/;
const cache = new Map<string, readonly Migration[]>();

/** The numbered `.sql` files of a set, in order. */
export function loadMigrations(set: MigrationSet = postboxMigrations): readonly Migration[] {
  let migrations = cache.get(set.directory);
  if (!migrations) {
    migrations = Object.freeze(
      readdirSync(set.directory)
        .filter((file) => fileName.test(file))
        .sort()
        .map((file) => {
          const [, version, name] = fileName.exec(file) as RegExpExecArray;
          const sql = readFileSync(join(set.directory, file), 'utf8');
          return { version: Number(version), name: name as string, sql, checksum: createHash('sha256').update(sql).digest('hex') };
        }),
    );
    cache.set(set.directory, migrations);
  }
  return migrations;
}

export function latestVersion(set: MigrationSet = postboxMigrations): number {
  return loadMigrations(set).at(-1)?.version ?? 0;
}
