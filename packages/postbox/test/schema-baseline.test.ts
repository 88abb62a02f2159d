import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { defineMigrationSet, postboxSchemaConstants } from '../src/schema/migrations.js';
import { migrate } from '../src/schema/migrator.js';
import { postgresDatabase } from '../src/sql/postgres-database.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';

const run = promisify(execFile);

/**
 * The migrations the baseline replaced, kept as they were: the baseline must build the schema they
 * built, apart from the duplicates it removed on purpose (listed below, each with why).
 */
const formerSeries = defineMigrationSet({
  name: 'Postbox before the baseline',
  directory: new URL('./fixtures/migrations-before-baseline/', import.meta.url),
  schema: 'postbox',
  lockKey: 7_170_412_355_001,
  migrateCommand: 'npx postbox migrate',
});

/** The baseline alone, without the migrations that came after it. */
const baselineDirectory = mkdtempSync(join(tmpdir(), 'postbox-baseline-'));
copyFileSync(fileURLToPath(new URL('../migrations/0001_baseline.sql', import.meta.url)), join(baselineDirectory, '0001_baseline.sql'));
const baseline = defineMigrationSet({
  name: 'Postbox baseline',
  directory: baselineDirectory,
  schema: 'postbox',
  lockKey: 7_170_412_355_001,
  migrateCommand: 'npx postbox migrate',
  constants: postboxSchemaConstants,
});

/** Every object whose definition differs between the two schemas, and why. Nothing else may differ. */
const intendedDifferences: Record<string, string> = {
  'FUNCTION append(jsonb, text, text, text)':
    'added: the one write to the log, plain messages and stream events alike, with its one NOTIFY rule; publish() calls it',
  'FUNCTION advance_stream(text, text, text, integer)': "removed: the stream's version check, folded into append()",
  'FUNCTION append_to_stream(text, text, text, json, json, json, json, text)': 'removed: a stream append is a call of append()',
  'FUNCTION append_to_stream(text, text, text, uuid[], text[], jsonb[], jsonb[], text)':
    'removed: an older form kept only for processes of an earlier build, none of which was released',
  'FUNCTION publish(text, text, jsonb, text, jsonb)': 'changed: validates, then inserts through append()',
  'FUNCTION read_after(text[], xid8, bigint, integer, pg_snapshot)':
    'changed: the one read, returning the rows of postbox.messages; with no topics it reads every stream, as read_all_after did',
  'FUNCTION read_all_after(xid8, bigint, integer)': 'removed: folded into read_after()',
  'FUNCTION topics_with_readers()': 'added: the topics append() wakes readers of, in a function of its own',
  'FUNCTION backlog(text[], xid8, bigint, pg_snapshot)':
    'added: how far a reader is behind, which group and projection status counted in statements of their own',
};

/** pg_dump's schema of one database, as a map from each object's header to its normalised definition. */
async function schemaObjects(url: string): Promise<Map<string, string>> {
  const { stdout } = await run('pg_dump', ['--schema-only', '--no-owner', '--no-privileges', '--schema=postbox', url], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const objects = new Map<string, string>();
  let current: string | undefined;
  let body: string[] = [];
  const flush = () => {
    if (current) objects.set(current, body.join('\n').trim());
    body = [];
  };
  for (const line of stdout.split('\n')) {
    const header = /^-- Name: (.+); Type: ([A-Z ]+); Schema: /.exec(line);
    if (header) {
      flush();
      current = `${header[2]} ${header[1]}`;
      continue;
    }
    // Comments, session settings, and the \restrict lines whose key pg_dump draws at random each run.
    if (/^(--|SET |SELECT pg_catalog\.set_config|\\(un)?restrict )/.test(line) || line.trim() === '') continue;
    body.push(line.trimEnd());
  }
  flush();
  return objects;
}

const databases: TestDatabase[] = [];
afterAll(async () => {
  await Promise.all(databases.map((database) => database.drop()));
});

async function migratedWith(set: typeof formerSeries): Promise<Map<string, string>> {
  const database = await createTestDatabase({ migrated: false });
  databases.push(database);
  const db = postgresDatabase(database.url);
  try {
    await migrate(db, { set });
  } finally {
    await db.close();
  }
  return schemaObjects(database.url);
}

describe('the schema baseline', () => {
  it('builds the schema of the migrations it replaced, apart from the duplicates it removed on purpose', async () => {
    const [built, former] = await Promise.all([migratedWith(baseline), migratedWith(formerSeries)]);
    expect(built.size).toBeGreaterThan(20);
    const differing = new Set<string>();
    for (const name of new Set([...built.keys(), ...former.keys()])) {
      if (built.get(name) !== former.get(name)) differing.add(name);
    }
    const unexplained = [...differing].filter((name) => !(name in intendedDifferences));
    const stale = Object.keys(intendedDifferences).filter((name) => !differing.has(name));
    expect({ unexplained, stale }).toEqual({ unexplained: [], stale: [] });
    for (const name of differing) {
      const why = intendedDifferences[name] as string;
      expect(built.has(name), `${name}: ${why}`).toBe(!why.startsWith('removed'));
      expect(former.has(name), `${name}: ${why}`).toBe(!why.startsWith('added'));
    }
  });
});
