import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AggregateDefinition } from '../src/eventstore/aggregate.js';
import type { EventStore } from '../src/eventstore/event-store.js';
import type { Postbox } from '../src/postbox.js';
import { backends, type TestPostbox } from './support/backends.js';
import { cli } from './support/cli.js';

// Tests that need a second connection or a child process only exist for the server: PGlite is one in-process connection.
const notOnPglite = (..._test: unknown[]) => undefined;

interface Tally {
  count: number;
  sum: number;
  last: number;
}

type Added = { type: 'Added'; data: { n: number } };

const tally = (snapshots: AggregateDefinition<Tally, Added>['snapshots'] = {}): AggregateDefinition<Tally, Added> => ({
  name: 'tally',
  category: 'tally',
  initialState: () => ({ count: 0, sum: 0, last: 0 }),
  evolve: (state, event) => ({ count: state.count + 1, sum: state.sum + event.data.n, last: event.data.n }),
  snapshots,
});

async function appendMany(store: EventStore, streamId: string, from: number, count: number): Promise<void> {
  for (let start = from; start < from + count; start += 1_000) {
    const size = Math.min(1_000, from + count - start);
    await store.append(
      streamId,
      Array.from({ length: size }, (_, i) => ({ type: 'Added', data: { n: start + i } })),
    );
  }
}

describe.each(backends)('snapshots on $name', (backend) => {
  let env: TestPostbox;
  let postbox: Postbox;
  let store: EventStore;

  beforeAll(async () => {
    env = await backend.open();
    postbox = env.postbox;
    store = postbox.eventStore();
  });
  afterAll(() => env.cleanup());

  it('only reads when loading unless asked to save: the bulk job then finds the stream without a snapshot', async () => {
    const id = 'tally-read-only';
    await appendMany(store, id, 1, 250);
    const aggregate = tally({ policy: { every: 100 } });
    expect(await store.aggregate(id, aggregate)).toMatchObject({ snapshot: 'none', replayed: 250, version: 250 });
    const count = async () =>
      (await postbox.db.query<{ n: number }>('select count(*)::int as n from postbox.snapshots where stream_id = $1', [id])).rows[0]?.n;
    expect(await count()).toBe(0);
    expect(await store.createSnapshots(aggregate, { every: 100 })).toMatchObject({ created: 1, failed: 0 });
    expect(await count()).toBe(1);
    expect(await store.aggregate(id, aggregate)).toMatchObject({ snapshot: 'used', snapshotVersion: 250, replayed: 0 });
  });

  it('loads a 10,000-event stream from its snapshot and the tail, to the same state as a full replay', async () => {
    const id = 'tally-big';
    const save = { saveSnapshots: true };
    await appendMany(store, id, 1, 10_000);
    const aggregate = tally({ policy: { every: 1_000 } });
    const first = await store.aggregate(id, aggregate, save);
    expect(first).toMatchObject({ snapshot: 'none', replayed: 10_000, version: 10_000 });
    const { rows } = await postbox.db.query<{ version: string }>('select version::text from postbox.snapshots where stream_id = $1', [id]);
    expect(rows).toEqual([{ version: '10000' }]);

    await appendMany(store, id, 10_001, 37);
    const fromSnapshot = await store.aggregate(id, aggregate, save);
    const full = await store.aggregate(id, { ...aggregate, snapshots: false });
    expect(full).toMatchObject({ snapshot: 'none', replayed: 10_037 });
    expect(fromSnapshot).toMatchObject({ snapshot: 'used', snapshotVersion: 10_000, replayed: 37, version: 10_037 });
    expect(fromSnapshot.state).toEqual(full.state);
    expect(full.state).toEqual({ count: 10_037, sum: (10_037 * 10_038) / 2, last: 10_037 });
  });

  it('falls back to a full replay when the snapshot is damaged, cannot be read back, or is of an older schema, and replaces it', async () => {
    const id = 'tally-damaged';
    const save = { saveSnapshots: true };
    await appendMany(store, id, 1, 500);
    const aggregate = tally({ policy: { every: 100 } });
    await store.aggregate(id, aggregate, save);
    const full = await store.aggregate(id, { ...aggregate, snapshots: false });

    await postbox.db.query(`update postbox.snapshots set state = jsonb_set(state, '{sum}', '1') where stream_id = $1`, [id]);
    const damaged = await store.aggregate(id, aggregate, save);
    expect(damaged).toMatchObject({ snapshot: 'unreadable', replayed: 500 });
    expect(damaged.state).toEqual(full.state);
    expect(await store.aggregate(id, aggregate, save)).toMatchObject({ snapshot: 'used', replayed: 0, state: full.state });

    const picky = tally({
      policy: { every: 100 },
      fromSnapshot: () => {
        throw new Error('unknown shape');
      },
    });
    const unreadable = await store.aggregate(id, picky, save);
    expect(unreadable).toMatchObject({ snapshot: 'unreadable', replayed: 500, state: full.state });

    await postbox.db.query('update postbox.snapshots set version = 9999 where stream_id = $1', [id]);
    expect(await store.aggregate(id, aggregate, save)).toMatchObject({ snapshot: 'unreadable', replayed: 500, state: full.state });

    const v2 = tally({ policy: { every: 100 }, schemaVersion: 2 });
    expect(await store.aggregate(id, v2, save)).toMatchObject({ snapshot: 'stale', replayed: 500, state: full.state });
    const { rows } = await postbox.db.query<{ schema_version: number }>(
      'select schema_version from postbox.snapshots where stream_id = $1',
      [id],
    );
    expect(rows).toEqual([{ schema_version: 2 }]);
    expect(await store.aggregate(id, v2, save)).toMatchObject({ snapshot: 'used', replayed: 0 });
  });

  it('keeps snapshots of a function policy, and from the command handler in the append transaction', async () => {
    const id = 'tally-policy';
    const aggregate = tally({ policy: ({ version }) => version % 7 === 0 });
    const handler = store.commandHandler({
      decider: { ...aggregate, decide: (n: number) => ({ type: 'Added' as const, data: { n } }) },
      name: aggregate.name,
      snapshots: aggregate.snapshots,
    });
    for (let n = 1; n <= 15; n++) await handler.handle(id, n);
    const { rows } = await postbox.db.query<{ version: string }>('select version::text from postbox.snapshots where stream_id = $1', [id]);
    expect(rows).toEqual([{ version: '14' }]);
    expect(await store.aggregate(id, aggregate)).toMatchObject({
      snapshot: 'used',
      snapshotVersion: 14,
      replayed: 1,
      state: { count: 15, sum: 120 },
    });
  });

  it('creates snapshots in bulk for streams whose snapshot is missing or behind', async () => {
    const aggregate = tally();
    for (const [id, count] of [
      ['tally-bulk1', 30],
      ['tally-bulk2', 5],
      ['tally-bulk3', 12],
    ] as const) {
      await appendMany(store, id, 1, count);
    }
    await store.archive('tally-bulk3');
    const result = await store.createSnapshots(aggregate, { every: 10 });
    const { rows } = await postbox.db.query<{ stream_id: string; version: string }>(
      `select stream_id, version::text from postbox.snapshots where name = 'tally' and stream_id like 'tally-bulk%' order by stream_id`,
    );
    expect(rows).toEqual([{ stream_id: 'tally-bulk1', version: '30' }]);
    expect(result.failed).toBe(0);
    await appendMany(store, 'tally-bulk1', 31, 10);
    expect((await store.createSnapshots(aggregate, { every: 10 })).created).toBeGreaterThanOrEqual(1);
    expect((await store.createSnapshots(aggregate, { every: 10 })).examined).toBe(0);
  });

  (backend.name === 'postgres' ? it : notOnPglite)('creates snapshots from the command line with the aggregate module', async () => {
    for (let i = 1; i <= 3; i++) {
      await store.append(`order-cli${i}`, [
        { type: 'OrderPlaced', data: { customer: `c${i}` } },
        ...Array.from({ length: i * 4 }, () => ({ type: 'ItemAdded', data: { sku: 's', quantity: 1, price: 2 } })),
      ]);
    }
    const run = await cli(['snapshots', 'create', '--module', 'packages/postbox/test/fixtures/order-aggregate.ts', '--every', '9'], {
      DATABASE_URL: env.url,
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Created 2 snapshots of order');
    const { rows } = await postbox.db.query<{ stream_id: string; state: unknown }>(
      `select stream_id, state from postbox.snapshots where name = 'order' and stream_id like 'order-cli%' order by stream_id`,
    );
    expect(rows).toEqual([
      { stream_id: 'order-cli2', state: { status: 'placed', customer: 'c2', items: 8, total: 16 } },
      { stream_id: 'order-cli3', state: { status: 'placed', customer: 'c3', items: 12, total: 24 } },
    ]);
    const missing = await cli(['snapshots', 'create', '--module', 'nope.js'], { DATABASE_URL: env.url });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^postbox: POSTBOX_ERR_USAGE: Cannot import --module nope.js/);
  });
});
