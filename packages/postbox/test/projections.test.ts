import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventStore } from '../src/eventstore/event-store.js';
import { EventStoreMetrics } from '../src/eventstore/event-store-metrics.js';
import type { Postbox } from '../src/postbox.js';
import { type AsyncProjection, defineProjection, type ProjectionContext, projectionGroup } from '../src/projections/projection.js';
import type { ProjectionRunner } from '../src/projections/projection-runner.js';
import { upsertRows } from '../src/projections/upsert-rows.js';
import { projectionSpec } from '../src/testing/projection-spec.js';
import { waitUntilCaughtUp } from '../src/testing/wait-until-caught-up.js';
import type { OrderEvent } from './fixtures/order-aggregate.js';
import { backends, type TestPostbox } from './support/backends.js';
import { cli } from './support/cli.js';
import { delay, waitFor } from './support/wait.js';

// Tests that need a second connection or a child process only exist for the server: PGlite is one in-process connection.
const notOnPglite = (..._test: unknown[]) => undefined;

interface TotalsOptions {
  name: string;
  table: string;
  category: string;
  /** Runs before each batch is applied. */
  before?: (events: { data: unknown; type: string }[], context: ProjectionContext) => Promise<void>;
}

/** One row per order: customer, item count and total, upserted once per order per batch. */
function totals(options: TotalsOptions): AsyncProjection<OrderEvent> {
  return defineProjection<OrderEvent>({
    name: options.name,
    categories: [options.category],
    eventTypes: ['OrderPlaced', 'ItemAdded'],
    readModel: {
      async create(tx, version) {
        await tx.query(
          `create table ${options.table}_v${version} (order_id text primary key, customer text, items int not null, total int not null)`,
        );
      },
      async activate(tx, version) {
        await tx.query(`create or replace view ${options.table} as select * from ${options.table}_v${version}`);
      },
      async drop(tx, version) {
        await tx.query(`drop table ${options.table}_v${version}`);
      },
    },
    async handle(events, context) {
      await options.before?.(events, context);
      const rows = new Map<string, { customer: string | null; items: number; total: number }>();
      for (const event of events) {
        const row = rows.get(event.streamId) ?? { customer: null, items: 0, total: 0 };
        if (event.type === 'OrderPlaced') row.customer = event.data.customer;
        if (event.type === 'ItemAdded') {
          row.items += event.data.quantity;
          row.total += event.data.quantity * event.data.price;
        }
        rows.set(event.streamId, row);
      }
      const table = context.table(options.table);
      await context.tx.query(
        `insert into ${table} as t (order_id, customer, items, total)
         select * from unnest($1::text[], $2::text[], $3::int[], $4::int[])
         on conflict (order_id) do update
           set customer = coalesce(excluded.customer, t.customer), items = t.items + excluded.items, total = t.total + excluded.total`,
        [
          [...rows.keys()],
          [...rows.values()].map((r) => r.customer),
          [...rows.values()].map((r) => r.items),
          [...rows.values()].map((r) => r.total),
        ],
      );
    },
  });
}

async function placeOrders(store: EventStore, category: string, orders: number, items: number): Promise<void> {
  for (let o = 1; o <= orders; o++) {
    await store.append(`${category}-${o}`, [
      { type: 'OrderPlaced', data: { customer: `customer-${o}` } },
      ...Array.from({ length: items }, (_, i) => ({ type: 'ItemAdded', data: { sku: `sku-${i}`, quantity: 1, price: o } })),
      { type: 'OrderShipped', data: { trackingId: `t-${o}` } },
    ]);
  }
}

function expectedTotals(orders: number, items: number, category: string) {
  return Array.from({ length: orders }, (_, k) => ({
    order_id: `${category}-${k + 1}`,
    customer: `customer-${k + 1}`,
    items,
    total: items * (k + 1),
  })).sort((a, b) => a.order_id.localeCompare(b.order_id));
}

const fast = { controlIntervalMs: 50, redeliveryIntervalMs: 50, consumer: { pollIntervalMs: 50, retryDelayMs: 10, maxRetryDelayMs: 20 } };

describe.each(backends)('projections on $name', (backend) => {
  let env: TestPostbox;
  let postbox: Postbox;
  let store: EventStore;
  const runners: ProjectionRunner<any>[] = [];
  const run = async (projection: AsyncProjection<any>, options: Parameters<EventStore['projection']>[1] = {}) => {
    const runner = store.projection(projection, { ...fast, ...options });
    runners.push(runner);
    await runner.start();
    return runner;
  };
  const rows = async (table: string) => (await postbox.db.query(`select * from ${table} order by order_id`)).rows;

  beforeAll(async () => {
    env = await backend.open();
    postbox = env.postbox;
    store = postbox.eventStore();
  });
  afterAll(async () => {
    for (const runner of runners) await runner.stop(2_000);
    await env.cleanup();
  });

  it('keeps a read model with an async projection: read-model writes commit with the checkpoint', async () => {
    await placeOrders(store, 'live', 6, 3);
    await postbox.publish({ topic: 'live', type: 'plain.message', payload: {} });
    const runner = await run(totals({ name: 'live-totals', table: 'live_totals', category: 'live' }), { batchSize: 4 });
    await waitUntilCaughtUp(runner);
    expect(await rows('live_totals')).toEqual(expectedTotals(6, 3, 'live'));
    await store.append('live-1', { type: 'ItemAdded', data: { sku: 'x', quantity: 2, price: 10 } });
    await waitUntilCaughtUp(runner);
    expect((await rows('live_totals'))[0]).toEqual({ order_id: 'live-1', customer: 'customer-1', items: 5, total: 23 });
    const status = await runner.status();
    expect(status).toMatchObject({ status: 'running', activeVersion: 1, lagEvents: 0, failures: 0, rebuild: null });
    expect(await runner.healthCheck()).toEqual({ name: 'projection:live-totals', status: 'healthy' });
  });

  it('rebuilds blue/green: the old model serves until the swap, and the new one equals the live one', async () => {
    const projectionName = 'bg-totals';
    const seenDuringRebuild: { view: unknown[]; built: number }[] = [];
    const projection = totals({
      name: projectionName,
      table: 'bg_totals',
      category: 'bg',
      async before(_events, context) {
        if (context.version !== 2) return;
        const view = (await context.tx.query('select * from bg_totals order by order_id')).rows;
        const built = Number((await context.tx.query<{ n: number }>('select count(*)::int as n from bg_totals_v2')).rows[0]?.n);
        seenDuringRebuild.push({ view, built });
      },
    });
    await placeOrders(store, 'bg', 8, 4);
    const runner = await run(projection, { batchSize: 5 });
    await waitUntilCaughtUp(runner);
    const live = await rows('bg_totals');
    expect(live).toEqual(expectedTotals(8, 4, 'bg'));

    await runner.rebuild();
    expect((await runner.status()).status).toBe('rebuilding');
    await waitFor(async () => (await runner.activeVersion()) === 2, 20_000, 'the rebuilt version to be swapped in');
    await waitUntilCaughtUp(runner);

    expect(await rows('bg_totals')).toEqual(live);
    expect(await rows('bg_totals_v2')).toEqual(live);
    expect(seenDuringRebuild.length).toBeGreaterThan(2);
    for (const seen of seenDuringRebuild) expect(seen.view).toEqual(live);
    expect(seenDuringRebuild.some((seen) => seen.built > 0 && seen.built < 8)).toBe(true);
    // The old read model is dropped just after the swap commits.
    const oldTable = async () =>
      (await postbox.db.query<{ old: string | null }>(`select to_regclass('bg_totals_v1')::text as old`)).rows[0]?.old;
    await waitFor(async () => (await oldTable()) === null, 5_000, 'the old read model to be dropped');
    const { rows: groups } = await postbox.db.query<{ group_name: string }>(
      `select group_name from postbox.consumer_groups where group_name like 'projection:bg-totals:%'`,
    );
    expect(groups.map((g) => g.group_name)).toEqual([projectionGroup(projectionName, 2)]);
    expect(await runner.status()).toMatchObject({ status: 'running', activeVersion: 2, rebuild: null });

    await store.append('bg-1', { type: 'ItemAdded', data: { sku: 'y', quantity: 1, price: 100 } });
    await waitUntilCaughtUp(runner);
    expect((await rows('bg_totals'))[0]).toMatchObject({ order_id: 'bg-1', items: 5, total: 104 });
  });

  it('applies a partitioned projection stream by stream, and rebuilds it with as many partitions', async () => {
    await placeOrders(store, 'split', 12, 3);
    const runner = await run(totals({ name: 'split-totals', table: 'split_totals', category: 'split' }), { batchSize: 5, partitions: 4 });
    await waitUntilCaughtUp(runner);
    expect(await rows('split_totals')).toEqual(expectedTotals(12, 3, 'split'));
    const [group] = await postbox.groupStatus(projectionGroup('split-totals', 1));
    expect(group?.partitions).toHaveLength(4);
    await runner.rebuild();
    await waitFor(async () => (await runner.activeVersion()) === 2, 20_000, 'the rebuilt version to be swapped in');
    await waitUntilCaughtUp(runner);
    expect(await rows('split_totals')).toEqual(expectedTotals(12, 3, 'split'));
    const [rebuilt] = await postbox.groupStatus(projectionGroup('split-totals', 2));
    expect(rebuilt?.partitions).toHaveLength(4);

    await runner.stop(2_000);
    const changed = store.projection(totals({ name: 'split-totals', table: 'split_totals', category: 'split' }), {
      ...fast,
      partitions: 2,
    });
    await expect(changed.start()).rejects.toMatchObject({ code: 'POSTBOX_ERR_GROUP_PARTITIONS_MISMATCH' });
    expect(changed.state).toBe('stopped');
  });

  it('shows faulted with the error after consecutive failures, and recovers once the failure stops', async () => {
    let failing = true;
    const runner = await run(
      totals({
        name: 'flaky-totals',
        table: 'flaky_totals',
        category: 'flaky',
        async before() {
          if (failing) throw new Error('read-model database is unreachable');
        },
      }),
      { maxFailures: 3 },
    );
    await placeOrders(store, 'flaky', 2, 1);
    await waitFor(async () => (await runner.status()).status === 'faulted', 15_000, 'the projection to fault');
    const status = await runner.status();
    expect(status.failures).toBeGreaterThanOrEqual(3);
    expect(status.lastError).toContain('read-model database is unreachable');
    expect(await runner.healthCheck()).toMatchObject({ status: 'unhealthy', detail: expect.stringContaining('unreachable') });
    expect(await store.projections.health({ name: 'flaky-totals' })).toEqual([expect.objectContaining({ status: 'unhealthy' })]);
    await expect(waitUntilCaughtUp(runner, { timeoutMs: 500 })).rejects.toMatchObject({ code: 'POSTBOX_ERR_PROJECTION_STATE' });
    expect(await rows('flaky_totals')).toEqual([]);
    failing = false;
    await waitFor(async () => (await runner.status()).status === 'running', 15_000, 'the projection to recover');
    await waitUntilCaughtUp(runner);
    expect(await rows('flaky_totals')).toEqual(expectedTotals(2, 1, 'flaky'));
    expect((await runner.status()).failures).toBe(0);
  });

  it('returns to running on the first batch that commits, in whichever process recorded the faults, without a resume', async () => {
    const failing = await run(
      totals({
        name: 'handover-totals',
        table: 'handover_totals',
        category: 'handover',
        async before() {
          throw new Error('the first process cannot reach its read model');
        },
      }),
      { maxFailures: 2 },
    );
    await placeOrders(store, 'handover', 2, 1);
    await waitFor(async () => (await failing.status()).status === 'faulted', 15_000, 'the projection to fault');
    await failing.stop();
    // Another process (here, a second runner) takes over with a handler that works; nobody resumes.
    const healthy = await run(totals({ name: 'handover-totals', table: 'handover_totals', category: 'handover' }), { maxFailures: 2 });
    await waitFor(async () => (await healthy.status()).status === 'running', 15_000, 'the projection to return to running');
    await waitUntilCaughtUp(healthy);
    expect(await rows('handover_totals')).toEqual(expectedTotals(2, 1, 'handover'));
    expect(await healthy.status()).toMatchObject({ status: 'running', failures: 0 });
  });

  it('sends an event that fails permanently to dead letters and moves on; a retried dead letter is applied', async () => {
    let poisoned = true;
    const runner = await run(
      totals({
        name: 'poison-totals',
        table: 'poison_totals',
        category: 'poison',
        async before(events) {
          if (poisoned && events.some((e) => (e.data as { customer?: string }).customer === 'customer-2')) {
            throw Object.assign(new Error('customer-2 cannot be projected'), { retriable: false });
          }
        },
      }),
    );
    await placeOrders(store, 'poison', 3, 2);
    await waitUntilCaughtUp(runner);
    expect((await rows('poison_totals')).map((r) => r.order_id)).toEqual(['poison-1', 'poison-2', 'poison-3']);
    expect((await rows('poison_totals'))[1]).toMatchObject({ customer: null, items: 2 });
    const letters = await postbox.deadLetters.list({ group: projectionGroup('poison-totals', 1) });
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({
      type: 'OrderPlaced',
      topic: 'poison',
      key: 'poison-2',
      errorMessage: 'customer-2 cannot be projected',
    });
    expect((await runner.status()).status).toBe('running');
    poisoned = false;
    await postbox.deadLetters.retry({ id: letters[0]?.id as string });
    await waitFor(async () => (await rows('poison_totals'))[1]?.customer === 'customer-2', 10_000, 'the retried dead letter');
    expect(await postbox.deadLetters.list({ group: projectionGroup('poison-totals', 1) })).toEqual([]);
  });

  it('discards the dead letters of a version a rebuild swapped out, saying what the new version did with each event', async () => {
    const name = 'swap-totals';
    let poisonInV1 = true;
    const runner = await run(
      totals({
        name,
        table: 'swap_totals',
        category: 'swap',
        async before(events, context) {
          const customers = events.map((e) => (e.data as { customer?: string }).customer);
          // customer-2 fails only in version 1 (the bug a rebuild fixes); customer-3 fails in every version.
          if ((poisonInV1 && context.version === 1 && customers.includes('customer-2')) || customers.includes('customer-3')) {
            throw Object.assign(new Error('cannot project this customer'), { retriable: false });
          }
        },
      }),
    );
    await placeOrders(store, 'swap', 3, 1);
    await waitUntilCaughtUp(runner);
    const v1Letters = await postbox.deadLetters.list({ group: projectionGroup(name, 1) });
    expect(v1Letters.map((letter) => letter.key)).toEqual(['swap-2', 'swap-3']);
    expect((await store.projections.deadLetters(name)).map((letter) => [letter.version, letter.key])).toEqual([
      [1, 'swap-2'],
      [1, 'swap-3'],
    ]);

    poisonInV1 = false;
    await runner.rebuild();
    await waitFor(async () => (await runner.activeVersion()) === 2, 20_000, 'the rebuilt version to be swapped in');
    await waitUntilCaughtUp(runner);

    expect(await postbox.deadLetters.list({ group: projectionGroup(name, 1) })).toEqual([]);
    expect(await postbox.deadLetters.retry({ group: projectionGroup(name, 1) })).toBe(0);
    const [v2Letter, ...others] = await postbox.deadLetters.list({ group: projectionGroup(name, 2) });
    expect(others).toEqual([]);
    expect(v2Letter).toMatchObject({ key: 'swap-3', status: 'pending' });
    const { rows: resolved } = await postbox.db.query<{ key: string; status: string; resolution: string }>(
      `select key, status, resolution from postbox.dead_letters where group_name = $1 order by id`,
      [projectionGroup(name, 1)],
    );
    expect(resolved).toEqual([
      {
        key: 'swap-2',
        status: 'discarded',
        resolution: `superseded: projection ${name} was rebuilt and version 2 swapped in for version 1; version 2 reads every event from the beginning itself and had not dead-lettered this event when it was swapped in`,
      },
      {
        key: 'swap-3',
        status: 'discarded',
        resolution: `superseded: projection ${name} was rebuilt and version 2 swapped in for version 1; version 2 reads every event from the beginning itself and dead-lettered this event too, as dead letter ${v2Letter?.id} (retry that one)`,
      },
    ]);
    expect((await store.projections.deadLetters(name)).map((letter) => [letter.version, letter.key, letter.status])).toEqual([
      [2, 'swap-3', 'pending'],
    ]);
    const all = await store.projections.deadLetters(name, { all: true });
    expect(all.map((letter) => [letter.version, letter.key, letter.status, letter.resolution?.slice(0, 11) ?? null])).toEqual([
      [1, 'swap-2', 'discarded', 'superseded:'],
      [1, 'swap-3', 'discarded', 'superseded:'],
      [2, 'swap-3', 'pending', null],
    ]);
    expect((await rows('swap_totals')).map((row) => [row.order_id, row.customer])).toEqual([
      ['swap-1', 'customer-1'],
      ['swap-2', 'customer-2'],
      ['swap-3', null],
    ]);
    await expect(store.projections.deadLetters('no-such-projection')).rejects.toMatchObject({ code: 'POSTBOX_ERR_PROJECTION_NOT_FOUND' });
  });

  it('keeps a row per key with upsert: each event becomes a row, the last one per key wins, and it rebuilds like any projection', async () => {
    const lines = defineProjection<OrderEvent>({
      name: 'line-rows',
      categories: ['lines'],
      eventTypes: ['ItemAdded'],
      readModel: {
        create: async (tx, version) => {
          await tx.query(
            `create table line_rows_v${version} (stream_id text primary key, global_position bigint not null, amount int not null,
               detail jsonb not null, at timestamptz not null)`,
          );
        },
        drop: async (tx, version) => {
          await tx.query(`drop table line_rows_v${version}`);
        },
      },
      upsert: {
        table: ({ table }) => table('line_rows'),
        key: 'stream_id',
        row: (event) =>
          event.type === 'ItemAdded'
            ? {
                stream_id: event.streamId,
                global_position: event.globalPosition,
                amount: event.data.quantity * event.data.price,
                detail: { sku: event.data.sku },
                at: event.createdAt,
              }
            : null,
      },
    });
    await placeOrders(store, 'lines', 3, 4);
    const runner = await run(lines, { batchSize: 100 });
    await waitUntilCaughtUp(runner);
    const latest = async (version: number) =>
      (
        await postbox.db.query<{ stream_id: string; amount: number; detail: unknown; gp: string }>(
          `select stream_id, amount, detail, global_position::text as gp from line_rows_v${version} order by stream_id`,
        )
      ).rows;
    const { rows: last } = await postbox.db.query<{ stream_id: string; gp: string }>(
      `select stream_id, max(global_position)::text as gp from postbox.messages where topic = 'lines' and type = 'ItemAdded'
       group by stream_id order by stream_id`,
    );
    const expected = [1, 2, 3].map((o, k) => ({ stream_id: `lines-${o}`, amount: o, detail: { sku: 'sku-3' }, gp: last[k]?.gp }));
    expect(await latest(1)).toEqual(expected);
    await runner.rebuild();
    await waitFor(async () => (await runner.activeVersion()) === 2, 20_000, 'the rebuilt version to be swapped in');
    await waitUntilCaughtUp(runner);
    expect(await latest(2)).toEqual(expected);
  });

  it('upserts rows in one statement: order kept per key, ignore mode, mixed columns, and clear errors', async () => {
    await postbox.db.query('create table upsert_rows_probe (id bigint primary key, name text, n int not null default 0)');
    const written = await postbox.transaction((tx) =>
      upsertRows(
        tx,
        'upsert_rows_probe',
        [
          { id: 1n, name: 'first', n: 1 },
          { id: 2, name: 'second', n: 2 },
          { id: '1', name: 'first again', n: 3 },
          { id: 3n, n: 9 },
          { id: 2n, n: 5 },
        ],
        { key: 'id' },
      ),
    );
    expect(written).toBe(4);
    const probe = async () => (await postbox.db.query('select id::int as id, name, n from upsert_rows_probe order by id')).rows;
    expect(await probe()).toEqual([
      { id: 1, name: 'first again', n: 3 },
      { id: 2, name: 'second', n: 5 },
      { id: 3, name: null, n: 9 },
    ]);
    await postbox.transaction((tx) =>
      upsertRows(
        tx,
        'upsert_rows_probe',
        [
          { id: 1, name: 'ignored', n: 0 },
          { id: 4, name: 'kept', n: 4 },
          { id: 4, name: 'ignored too', n: 0 },
        ],
        { key: ['id'], onConflict: 'ignore' },
      ),
    );
    expect((await probe()).map((row) => row.name)).toEqual(['first again', 'second', null, 'kept']);
    await expect(postbox.transaction((tx) => upsertRows(tx, 'upsert_rows_probe', [{ name: 'x' }], { key: 'id' }))).rejects.toMatchObject({
      code: 'POSTBOX_ERR_BAD_OPTION',
      message: expect.stringContaining('"id" is not a column'),
    });
    await expect(postbox.transaction((tx) => upsertRows(tx, 'a.b.c', [{ id: 1 }], { key: 'id' }))).rejects.toMatchObject({
      code: 'POSTBOX_ERR_BAD_OPTION',
    });
    expect(() =>
      defineProjection({
        name: 'both',
        categories: ['x'],
        handle: async () => {},
        upsert: { table: 't', key: 'id', row: () => null },
      } as never),
    ).toThrow(expect.objectContaining({ code: 'POSTBOX_ERR_BAD_OPTION' }));
    expect(() => defineProjection({ name: 'neither', categories: ['x'] } as never)).toThrow('needs a handle() function');
  });

  it('honours pause and resume set in the database', async () => {
    const runner = await run(totals({ name: 'pausable-totals', table: 'pausable_totals', category: 'pausable' }));
    await placeOrders(store, 'pausable', 1, 1);
    await waitUntilCaughtUp(runner);
    await store.projections.pause('pausable-totals');
    await waitFor(async () => (await runner.status()).status === 'stopped', 5_000, 'the projection to stop');
    expect(await runner.healthCheck()).toMatchObject({ status: 'degraded', detail: 'paused' });
    await store.append('pausable-1', { type: 'ItemAdded', data: { sku: 'z', quantity: 1, price: 7 } });
    await delay(300);
    expect((await rows('pausable_totals'))[0]).toMatchObject({ items: 1 });
    expect((await runner.status()).lagEvents).toBe(1);
    await store.projections.resume('pausable-totals');
    await waitUntilCaughtUp(runner);
    expect((await rows('pausable_totals'))[0]).toMatchObject({ items: 2, total: 8 });
  });

  it('reports projection lag as a metric, and specs a projection on given events', async () => {
    const registry = new Registry();
    new EventStoreMetrics(registry, postbox.db);
    const metrics = await registry.getMetricsAsJSON();
    const lag = metrics.find((m) => m.name === 'projection_lag_events');
    expect(lag?.values).toEqual(expect.arrayContaining([expect.objectContaining({ labels: { projection: 'live-totals' }, value: 0 })]));

    await projectionSpec(totals({ name: 'spec-totals', table: 'spec_totals', category: 'spec' }), { db: postbox.db })
      .given([
        { streamId: 'spec-1', type: 'OrderPlaced', data: { customer: 'ann' } },
        { streamId: 'spec-1', type: 'ItemAdded', data: { sku: 'a', quantity: 2, price: 3 } },
        { streamId: 'spec-2', type: 'OrderPlaced', data: { customer: 'bob' } },
      ])
      .expectRows(
        'select * from spec_totals_v1 order by order_id',
        [],
        [
          { order_id: 'spec-1', customer: 'ann', items: 2, total: 6 },
          { order_id: 'spec-2', customer: 'bob', items: 0, total: 0 },
        ],
      );
    const { rows: left } = await postbox.db.query(`select to_regclass('spec_totals_v1') as t`);
    expect(left[0]).toEqual({ t: null });
  });

  (backend.name === 'postgres' ? it : notOnPglite)(
    "lists a projection's dead letters from the command line, superseded ones with --all",
    async () => {
      await postbox.db.query(
        `insert into postbox.projections (name, categories, active_version, prepared_version) values ('cli-letters', '{clil}', 2, 2)`,
      );
      const letter = (group: string, key: string, status: string, resolution: string | null) =>
        postbox.db.query(
          `insert into postbox.dead_letters (group_name, handler, source, message_id, topic, type, key, payload, source_position,
           error_message, attempts, first_failed_at, last_failed_at, status, resolution)
         values ($1, 'cli-letters', 'log', gen_random_uuid()::text, 'clil', 'OrderPlaced', $2, '{}', '1/1', 'no customer', 1, now(), now(), $3, $4)`,
          [group, key, status, resolution],
        );
      await letter(projectionGroup('cli-letters', 1), 'clil-1', 'discarded', 'superseded: projection cli-letters was rebuilt');
      await letter(projectionGroup('cli-letters', 2), 'clil-2', 'pending', null);
      await letter('some-other-group', 'clil-3', 'pending', null);
      const cliEnv = { DATABASE_URL: env.url };
      const open = await cli(['projections', 'dead-letters', 'cli-letters'], cliEnv);
      expect(open.stderr).toBe('');
      expect(open.stdout.trim().split('\n')).toEqual([
        expect.stringMatching(/^ID\s+VERSION\s+STATUS\s+TYPE\s+KEY\s+ATTEMPTS\s+LAST FAILED\s+ERROR\s+RESOLUTION$/),
        expect.stringMatching(/^\d+\s+v2\s+pending\s+OrderPlaced\s+clil-2\s+1\s+\S+\s+no customer\s+-$/),
      ]);
      const all = await cli(['projections', 'dead-letters', 'cli-letters', '--all', '--json'], cliEnv);
      expect(
        all.stdout
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line)),
      ).toEqual([
        expect.objectContaining({
          version: 1,
          key: 'clil-1',
          status: 'discarded',
          resolution: 'superseded: projection cli-letters was rebuilt',
        }),
        expect.objectContaining({ version: 2, key: 'clil-2', status: 'pending', resolution: null }),
      ]);
      const none = await cli(['projections', 'dead-letters', 'cli-totals-none'], cliEnv);
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/^postbox: POSTBOX_ERR_PROJECTION_NOT_FOUND: /);
    },
    120_000,
  );

  (backend.name === 'postgres' ? it : notOnPglite)(
    'is steered from the command line: list, status, pause, resume, rebuild',
    async () => {
      const runner = await run(totals({ name: 'cli-totals', table: 'cli_totals', category: 'clicat' }));
      await placeOrders(store, 'clicat', 2, 2);
      await waitUntilCaughtUp(runner);
      const cliEnv = { DATABASE_URL: env.url };
      const list = await cli(['projections', 'list'], cliEnv);
      expect(list.stderr).toBe('');
      expect(list.stdout).toMatch(/cli-totals\s+running\s+v1\s+clicat\s+0/);
      const paused = await cli(['projections', 'pause', 'cli-totals'], cliEnv);
      expect(paused.stdout).toContain('Projection cli-totals: paused.');
      await waitFor(async () => (await runner.status()).status === 'stopped', 5_000, 'the pause');
      await store.append('clicat-1', { type: 'ItemAdded', data: { sku: 'q', quantity: 1, price: 1 } });
      await delay(300);
      expect((await rows('cli_totals'))[0]).toMatchObject({ items: 2 });
      expect((await cli(['projections', 'resume', 'cli-totals'], cliEnv)).code).toBe(0);
      await waitUntilCaughtUp(runner);
      expect((await rows('cli_totals'))[0]).toMatchObject({ items: 3 });
      const rebuild = await cli(['projections', 'rebuild', 'cli-totals'], cliEnv);
      expect(rebuild.stdout).toContain('rebuild requested (building v2 beside v1)');
      await waitFor(async () => (await runner.activeVersion()) === 2, 20_000, 'the rebuild');
      await waitUntilCaughtUp(runner);
      const status = await cli(['projections', 'status', 'cli-totals', '--json'], cliEnv);
      expect(JSON.parse(status.stdout)).toMatchObject({ name: 'cli-totals', status: 'running', activeVersion: 2, lagEvents: 0 });
      expect((await rows('cli_totals'))[0]).toMatchObject({ items: 3 });
      const missing = await cli(['projections', 'pause', 'nope'], cliEnv);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/^postbox: POSTBOX_ERR_PROJECTION_NOT_FOUND: /);
    },
    120_000,
  );
});
