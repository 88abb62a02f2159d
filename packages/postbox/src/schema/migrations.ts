import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaults } from '../config/defaults.js';
import { ValidationError } from '../errors/postbox-error.js';
import { checkIdentifier } from '../sql/identifier.js';

export interface Migration {
  version: number;
  name: string;
  /** The SQL to run, with the set's constants written in. */
  sql: string;
  /** Of the file as shipped, so that the constants' values are not part of a migration's identity. */
  checksum: string;
}

/** Values a set's `.sql` files name as `{{name}}`: numbers, or words of letters, digits and underscores. */
export type SchemaConstants = Readonly<Record<string, number | string>>;

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
  /** Constants shared with the code, written into the SQL where a file names them as `{{name}}`. */
  constants?: SchemaConstants;
}

export function defineMigrationSet(options: {
  name: string;
  directory: string | URL;
  schema: string;
  table?: string;
  lockKey: number;
  migrateCommand: string;
  constants?: SchemaConstants;
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
    constants: options.constants,
  };
}

/**
 * What the Postbox schema shares with the TypeScript code: the wake-up channel, the limits that
 * postbox.publish() checks exactly as the outbox API does, the timekeeper's lease and channel, and
 * the channel that tells routers of released parked messages. They are defined once, in defaults.
 */
export const postboxSchemaConstants: SchemaConstants = Object.freeze({
  notifyChannel: defaults.notifyChannel,
  maxNameLength: defaults.maxNameLength,
  maxKeyLength: defaults.maxKeyLength,
  maxHeaderValueLength: defaults.maxHeaderValueLength,
  maxHeaderCount: defaults.maxHeaderCount,
  schemaVersion: defaults.schemaVersion,
  partitionBuckets: defaults.partitionBuckets,
  timekeeperLease: defaults.timekeeper.leaseName,
  timekeeperChannel: defaults.timekeeper.channel,
  parkedChannel: defaults.parkedChannel,
});

/** Postbox's own schema. */
export const postboxMigrations: MigrationSet = defineMigrationSet({
  name: 'Postbox',
  directory: new URL('../../migrations/', import.meta.url),
  schema: 'postbox',
  lockKey: 7_170_412_355_001,
  migrateCommand: 'npx postbox migrate',
  constants: postboxSchemaConstants,
});

const placeholder = /\{\{(\w+)\}\}/g;

/** Writes the set's constants into a file's SQL; a name the set does not define is a mistake in the file. */
function render(set: MigrationSet, file: string, sql: string): string {
  if (!set.constants) return sql;
  const constants = set.constants;
  return sql.replace(placeholder, (_match, name: string) => {
    const value = Object.hasOwn(constants, name) ? constants[name] : undefined;
    if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
    if (typeof value === 'string' && /^\w+$/.test(value)) return value;
    throw new ValidationError(
      'POSTBOX_ERR_BAD_OPTION',
      `Migration ${file} of the ${set.name} schema names {{${name}}}, which is not a constant of the set (an integer, or a word).`,
      { file, constant: name },
    );
  });
}

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
          const text = readFileSync(join(set.directory, file), 'utf8');
          return {
            version: Number(version),
            name: name as string,
            sql: render(set, file, text),
            checksum: createHash('sha256').update(text).digest('hex'),
          };
        }),
    );
    cache.set(set.directory, migrations);
  }
  return migrations;
}

export function latestVersion(set: MigrationSet = postboxMigrations): number {
  return loadMigrations(set).at(-1)?.version ?? 0;
}
