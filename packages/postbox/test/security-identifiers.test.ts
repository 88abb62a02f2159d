import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPostboxError } from '../src/errors/postbox-error.js';
import { defineMigrationSet, type MigrationSet, postboxMigrations } from '../src/schema/migrations.js';
import { assertSchemaCurrent, migrate, migrationsAsSql, schemaVersion } from '../src/schema/migrator.js';
import { backends, type TestPostbox } from './support/backends.js';
import { hostileText, propertyRuns } from './support/properties.js';
import { waitFor } from './support/wait.js';

const hostileNames = [
  'x"; drop table postbox.messages; --',
  "x'; drop table postbox.messages; --",
  'x; create table pwned (i int)',
  'pwned"',
  '"quoted"',
  'nul\u0000name',
  'a'.repeat(64),
  'l'.repeat(10_000),
  'tablé',
  '表',
  'Upper',
  '1starts_with_digit',
  'has space',
  'has-dash',
  '',
];

const plain = /^[a-z_][a-z0-9_]{0,62}$/;
const candidate = fc.oneof(fc.constantFrom(...hostileNames), hostileText, fc.stringMatching(/^[a-z_][a-z0-9_]{0,70}$/));

function expectBadOption(run: () => unknown): void {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(isPostboxError(thrown, 'POSTBOX_ERR_BAD_OPTION')).toBe(true);
}

async function expectBadOptionAsync(run: () => Promise<unknown>): Promise<void> {
  const error = await run().then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(isPostboxError(error, 'POSTBOX_ERR_BAD_OPTION')).toBe(true);
}

/** A set as a caller may build it by hand, without defineMigrationSet's checks. */
function handMadeSet(schema: string, table: string): MigrationSet {
  return { ...postboxMigrations, name: 'hand-made', versionSchema: schema, versionTable: `${schema}.${table}`, lockKey: 99 };
}

describe('identifiers from configuration', () => {
  it('defineMigrationSet takes only plain lower-case schema and table names', () => {
    fc.assert(
      fc.property(candidate, candidate, (schema, table) => {
        const define = () => defineMigrationSet({ name: 'x', directory: '/nowhere', schema, table, lockKey: 1, migrateCommand: 'x' });
        if (plain.test(schema) && plain.test(table)) expect(define().versionTable).toBe(`${schema}.${table}`);
        else expectBadOption(define);
      }),
      propertyRuns(300),
    );
  });

  it('migrationsAsSql refuses a hand-made set with a hostile version table, and quotes a plain one', () => {
    for (const name of hostileNames) {
      expectBadOption(() => migrationsAsSql(handMadeSet(name, 'schema_migrations')));
      expectBadOption(() => migrationsAsSql(handMadeSet('app', name)));
    }
    expectBadOption(() => migrationsAsSql({ ...postboxMigrations, versionTable: 'other.schema_migrations' }));
    expectBadOption(() => migrationsAsSql({ ...postboxMigrations, versionTable: 'postbox.a.b' }));
    expect(migrationsAsSql()).toContain('create table if not exists postbox.schema_migrations');
    // A reserved word is a valid name once quoted, as PostgreSQL's quote_ident() does it.
    const reserved = migrationsAsSql({ ...postboxMigrations, versionSchema: 'user', versionTable: 'user.order' });
    expect(reserved).toContain('create schema if not exists "user";');
    expect(reserved).toContain('insert into "user"."order" (version, name, checksum)');
  });
});

describe.each(backends)('hostile identifiers on $name', (backend) => {
  let handle: TestPostbox;

  beforeAll(async () => {
    handle = await backend.open();
  });

  afterAll(async () => {
    await handle?.cleanup();
  });

  async function untouched(): Promise<void> {
    const { rows } = await handle.postbox.db.query<{ messages: boolean; pwned: boolean; schemas: number }>(
      `select to_regclass('postbox.messages') is not null as messages, to_regclass('pwned') is not null as pwned,
              (select count(*)::int from pg_namespace where nspname not like 'pg\\_%' and nspname not in ('information_schema', 'public', 'postbox', 'user')) as schemas`,
    );
    expect(rows[0]).toEqual({ messages: true, pwned: false, schemas: 0 });
  }

  it('migrate, schemaVersion and assertSchemaCurrent refuse a hostile version table before any SQL runs', async () => {
    const { db } = handle.postbox;
    for (const name of hostileNames) {
      for (const set of [handMadeSet(name, 'schema_migrations'), handMadeSet('app_schema', name)]) {
        await expectBadOptionAsync(() => migrate(db, { set }));
        await expectBadOptionAsync(() => schemaVersion(db, set));
        await expectBadOptionAsync(() => assertSchemaCurrent(db, set));
      }
    }
    await untouched();
    // The plain names still work, quoted.
    expect(await schemaVersion(db)).toBeGreaterThan(0);
  });

  it('migrates a set whose schema and table are reserved words, quoted', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'postbox-reserved-'));
    try {
      writeFileSync(join(directory, '0001_probe.sql'), 'create table reserved_probe_items (id integer);\n');
      const set = defineMigrationSet({ name: 'reserved', directory, schema: 'user', table: 'order', lockKey: 17, migrateCommand: 'x' });
      const { db } = handle.postbox;
      expect((await migrate(db, { set })).applied).toEqual([{ version: 1, name: 'probe' }]);
      expect(await schemaVersion(db, set)).toBe(1);
      await assertSchemaCurrent(db, set);
      const { rows } = await db.query<{ n: number }>('select count(*)::int as n from "user"."order"');
      expect(rows[0]?.n).toBe(1);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('listen refuses a channel that is not a plain identifier, so no channel can carry SQL', async () => {
    const { db } = handle.postbox;
    for (const channel of hostileNames) await expectBadOptionAsync(() => db.listen(channel, () => undefined));
    await fc.assert(
      fc.asyncProperty(candidate, async (channel) => {
        if (plain.test(channel)) return;
        await expectBadOptionAsync(() => db.listen(channel, () => undefined));
      }),
      propertyRuns(100),
    );
    await untouched();

    const heard: string[] = [];
    const unlisten = await db.listen('plain_channel_1', (payload) => heard.push(payload));
    try {
      await db.query(`select pg_notify('plain_channel_1', $1)`, ['x"; drop table postbox.messages; --']);
      await waitFor(() => heard.length === 1, 10_000, 'the notification');
      expect(heard).toEqual(['x"; drop table postbox.messages; --']);
    } finally {
      await unlisten();
    }
  });
});
