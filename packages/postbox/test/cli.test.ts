import { afterAll, beforeAll, describe, it } from 'vitest';
import { acquirePartitions, ensureGroup } from '../src/consumers/group-store.js';
import { Postbox } from '../src/postbox.js';
import { cli, lines } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { waitFor } from './support/wait.js';

interface TailedMessage {
  id: string;
  topic: string;
  type: string;
  key: string | null;
  payload: unknown;
  headers: Record<string, unknown>;
  position: { transactionId: string; globalPosition: string };
}

// The tests use topics and groups of their own, so they share one database and run side by side.
describe.concurrent('postbox CLI', () => {
  let database: TestDatabase;
  let postbox: Postbox;
  let env: Record<string, string>;

  const checkpoint = async (group: string) => {
    const { rows } = await postbox.db.query<{ tx: string; pos: string }>(
      'select checkpoint_transaction_id::text as tx, checkpoint_position::text as pos from postbox.group_partitions where group_name = $1 and partition = 0',
      [group],
    );
    return rows[0];
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    env = { DATABASE_URL: database.url };
    postbox = await Postbox.create({ databaseUrl: database.url });
  });

  afterAll(async () => {
    await postbox?.close(2_000);
    await database?.drop();
  });

  it('migrates an empty database, after which status works', async ({ expect }) => {
    const empty = await createTestDatabase({ migrated: false });
    try {
      const emptyEnv = { DATABASE_URL: empty.url };
      const before = await cli(['status'], emptyEnv);
      expect(before.code).toBe(1);
      expect(before.stderr).toMatch(/^postbox: POSTBOX_ERR_SCHEMA_NOT_MIGRATED: .*postbox migrate/);

      const first = await cli(['migrate'], emptyEnv);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(first.stdout).toContain('Applied migration 0001_baseline');
      const again = await cli(['migrate'], emptyEnv);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain('nothing to apply');
      expect(again.stdout).not.toContain('Applied migration');

      const after = await cli(['status'], emptyEnv);
      expect(after.stderr).toBe('');
      expect(after.code).toBe(0);
      expect(after.stdout).toContain('No consumer groups.');
      expect(after.stdout).toContain('Watermark delay:');
    } finally {
      await empty.drop();
    }
  });

  it('prints the schema with migrate --print without connecting to any database', async ({ expect }) => {
    const run = await cli(['migrate', '--print'], { DATABASE_URL: 'postgres://user:secret@127.0.0.1:1/x' });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('create table postbox.messages');
    expect(run.stdout).toContain('insert into postbox.schema_migrations');
  });

  it('publishes, tails exactly --limit messages, commits what it printed and nothing more', async ({ expect }) => {
    const payload = '{"a":1,"id":"o-1","note":"h\\u00e9llo \\u2713 \\"quoted\\"\\nnext","nested":{"list":[1,2.5,true,null,"\\u0001"]}}';
    const canonical = JSON.stringify(JSON.parse(payload));
    const published = await cli(
      [
        'publish',
        '--topic',
        'orders',
        '--type',
        'order.created',
        '--key',
        'o-1',
        '--payload',
        payload,
        '--header',
        'source=cli=yes',
        '--header',
        'tenant=t1',
        '--trace-id',
        'trace-1',
        '--user-id',
        'user-1',
        '--schema-version',
        '2',
      ],
      env,
    );
    expect(published.stderr).toBe('');
    expect(published.code).toBe(0);
    const firstId = published.stdout.trim();
    expect(firstId).toMatch(/^[0-9a-f-]{36}$/);
    const [secondId] = await postbox.publish({ topic: 'orders', type: 'order.paid', payload: { n: 2 } });
    const [thirdId] = await postbox.publish({ topic: 'orders', type: 'order.shipped', payload: { n: 3 } });

    const first = await cli(['tail', '--topic', 'orders', '--group', 'billing', '--json', '--limit', '2'], env);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const printed = lines(first.stdout);
    expect(printed).toHaveLength(2);
    expect(printed[0]).toContain(`"payload":${canonical},`);
    const [one, two] = printed.map((line) => JSON.parse(line) as TailedMessage);
    expect(one).toMatchObject({
      id: firstId,
      topic: 'orders',
      type: 'order.created',
      key: 'o-1',
      headers: { source: 'cli=yes', tenant: 't1', traceId: 'trace-1', userId: 'user-1', schemaVersion: 2 },
    });
    expect(one?.position.transactionId).toMatch(/^\d+$/);
    expect(one?.position.globalPosition).toMatch(/^\d+$/);
    expect(two).toMatchObject({ id: secondId, type: 'order.paid', key: null, payload: { n: 2 } });
    expect(await checkpoint('billing')).toEqual({ tx: two?.position.transactionId, pos: two?.position.globalPosition });

    const status = await cli(['status', '--json'], env);
    expect(status.code).toBe(0);
    const report = JSON.parse(status.stdout) as {
      groups: { group: string; lagMessages: number; lagSeconds: number; partitions: { checkpoint: { globalPosition: string } }[] }[];
      topics: { topic: string; messages: number }[];
    };
    const billing = report.groups.find((group) => group.group === 'billing');
    expect(billing?.lagMessages).toBe(1);
    expect(billing?.lagSeconds).toBeGreaterThan(0);
    expect(billing?.partitions[0]?.checkpoint.globalPosition).toBe(two?.position.globalPosition);
    expect(report.topics.find((topic) => topic.topic === 'orders')?.messages).toBe(3);

    const second = await cli(['tail', '--topic', 'orders', '--group', 'billing', '--json', '--limit', '5', '--timeout', '0.3'], env);
    expect(second.code).toBe(0);
    const rest = lines(second.stdout).map((line) => JSON.parse(line) as TailedMessage);
    expect(rest.map((message) => message.id)).toEqual([thirdId]);
    expect(await checkpoint('billing')).toEqual({ tx: rest[0]?.position.transactionId, pos: rest[0]?.position.globalPosition });
  });

  it('starts a --from latest group after what was published before it existed', async ({ expect }) => {
    await postbox.publish({ topic: 'audit', type: 'audit.before', payload: 'before' });
    const created = await cli(['tail', '--topic', 'audit', '--group', 'auditor', '--from', 'latest', '--timeout', '0'], env);
    expect(created.code).toBe(0);
    expect(created.stdout).toBe('');
    await postbox.publish({ topic: 'audit', type: 'audit.after', key: 'k-9', payload: { after: true } });

    const run = await cli(['tail', '--topic', 'audit', '--group', 'auditor', '--timeout', '0'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const printed = lines(run.stdout);
    expect(printed).toHaveLength(1);
    expect(printed[0]).toMatch(/^\S+Z audit audit\.after key=k-9 \{"after":true\} @\d+\/\d+$/);
  });

  it('exits after --timeout seconds without a message', async ({ expect }) => {
    const run = await cli(['tail', '--topic', 'quiet', '--group', 'idle', '--timeout', '3'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('');
    expect(run.ms).toBeGreaterThanOrEqual(3_000);
    expect(run.ms).toBeLessThan(30_000);
  });

  it('waits for a message published while it tails', async ({ expect }) => {
    const running = cli(['tail', '--topic', 'live', '--group', 'watcher', '--json', '--limit', '1', '--timeout', '20'], env);
    await waitFor(async () => {
      const { rows } = await postbox.db.query(
        `select 1 from postbox.group_partitions where group_name = 'watcher' and lease_owner is not null`,
      );
      return rows.length > 0;
    }, 30_000);
    const [id] = await postbox.publish({ topic: 'live', type: 'live.event', payload: { live: true } });
    const published = Date.now();
    const run = await running;
    expect(run.code).toBe(0);
    expect(lines(run.stdout).map((line) => (JSON.parse(line) as TailedMessage).id)).toEqual([id]);
    // --limit 1 ends it as soon as the message is printed, long before the 20 s timeout.
    expect(Date.now() - published).toBeLessThan(10_000);
  });

  it('says on stderr that another process holds the lease, and gives up at the timeout', async ({ expect }) => {
    await ensureGroup(postbox.db, { name: 'busy', topics: ['orders'], startFrom: 'earliest', ephemeral: false, partitions: 1 });
    expect(await acquirePartitions(postbox.db, 'busy', 'someone-else', 60_000, [0], 1)).toHaveLength(1);
    const run = await cli(['tail', '--topic', 'orders', '--group', 'busy', '--json', '--timeout', '1'], env);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('someone-else');
    expect(run.stderr).toMatch(/^postbox: POSTBOX_ERR_GROUP_BUSY: .*busy/m);
    expect(await checkpoint('busy')).toEqual({ tx: '0', pos: '0' });
  });

  it('cleans up only stale ephemeral groups, and deletes a group by name', async ({ expect }) => {
    for (const [name, ephemeral] of [
      ['worker_instance_stale', true],
      ['worker_instance_fresh', true],
      ['durable_old', false],
    ] as const) {
      await ensureGroup(postbox.db, { name, topics: ['jobs'], startFrom: 'earliest', ephemeral, partitions: 1 });
    }
    await postbox.db.query(
      `update postbox.consumer_groups set last_seen_at = now() - interval '2 days' where group_name in ('worker_instance_stale', 'durable_old')`,
    );

    const run = await cli(['groups', 'cleanup', '--older-than', '24h'], env);
    expect(run.code).toBe(0);
    expect(lines(run.stdout)).toEqual(['worker_instance_stale']);
    const { rows } = await postbox.db.query<{ group_name: string }>(
      `select group_name from postbox.consumer_groups where group_name like 'worker%' or group_name = 'durable_old' order by 1`,
    );
    expect(rows.map((row) => row.group_name)).toEqual(['durable_old', 'worker_instance_fresh']);

    const deleted = await cli(['groups', 'delete', 'durable_old'], env);
    expect(deleted.code).toBe(0);
    expect(await checkpoint('durable_old')).toBeUndefined();
    const missing = await cli(['groups', 'delete', 'durable_old'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^postbox: POSTBOX_ERR_GROUP_NOT_FOUND: .*durable_old/);
  });

  it('applies retention to the given topics and prints the count', async ({ expect }) => {
    await postbox.publish([
      { topic: 'old-news', type: 'n', payload: 1 },
      { topic: 'old-news', type: 'n', payload: 2 },
      { topic: 'kept-news', type: 'n', payload: 3 },
    ]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const run = await cli(['retention', '--older-than', '10ms', '--topic', 'old-news'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe('2');
    const { rows } = await postbox.db.query<{ topic: string }>(
      `select topic from postbox.messages where topic in ('old-news', 'kept-news') order by topic`,
    );
    expect(rows.map((row) => row.topic)).toEqual(['kept-news']);
  });

  it('reports bad flags, bad JSON and unreachable databases in one line, without the password', async ({ expect }) => {
    const badUrl = { DATABASE_URL: 'postgres://user:secret@127.0.0.1:1/x' };
    const [missingType, badLimit, unknown, badJson, unreachable, unreachableFlag, wrongScheme, help] = await Promise.all([
      cli(['publish', '--topic', 'cli-errors', '--payload', '1'], env),
      cli(['tail', '--topic', 'cli-errors', '--group', 'g', '--limit', 'zero'], env),
      cli(['status', '--bogus'], env),
      cli(['publish', '--topic', 'cli-errors', '--type', 't', '--payload', '{"a":'], env),
      cli(['status'], badUrl),
      cli(['publish', '--topic', 'cli-errors', '--type', 't', '--payload', '1', '--database-url', badUrl.DATABASE_URL], env),
      cli(['status'], { DATABASE_URL: 'mysql://user:secret@127.0.0.1/x' }),
      cli(['tail', '--help'], env),
    ]);

    for (const run of [missingType, badLimit, unknown]) {
      expect(run.code).toBe(2);
      expect(lines(run.stderr)).toHaveLength(1);
    }
    expect(missingType.stderr).toMatch(/^postbox: POSTBOX_ERR_USAGE: required option '--type <type>' not specified/);
    expect(badLimit.stderr).toMatch(/^postbox: POSTBOX_ERR_USAGE: option '--limit <n>' argument 'zero' is invalid/);
    expect(unknown.stderr).toMatch(/^postbox: POSTBOX_ERR_USAGE: unknown option '--bogus'/);

    expect(badJson.code).toBe(1);
    expect(badJson.stderr).toMatch(/^postbox: POSTBOX_ERR_PAYLOAD_NOT_JSON: --payload is not valid JSON/);
    const { rows } = await postbox.db.query(`select 1 from postbox.messages where topic = 'cli-errors'`);
    expect(rows).toHaveLength(0);

    for (const run of [unreachable, unreachableFlag]) {
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(lines(run.stderr)).toEqual([
        expect.stringMatching(
          /^postbox: POSTBOX_ERR_CONNECTION: Cannot connect to postgres:\/\/user:\*\*\*@127\.0\.0\.1:1\/x: .*ECONNREFUSED/,
        ),
      ]);
      expect(run.stderr).not.toContain('secret');
    }
    expect(wrongScheme.code).toBe(1);
    expect(wrongScheme.stderr).toMatch(/^postbox: POSTBOX_ERR_CONFIG: DATABASE_URL must start with postgres:\/\//);
    expect(wrongScheme.stderr).not.toContain('secret');

    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--from <where>');
    expect(help.stdout).toContain('--database-url <url>');
  });
});
