import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import { defineProjection, Postbox } from 'postbox';
import { connect, createDatabase } from './support/database.js';
import { chunks } from './support/messages.js';
import { type Cell, printTable, ratio, times } from './support/table.js';
import { percentile, perSecond, sleep, timed } from './support/timing.js';

const singleAppends = Number(process.env.BENCH_ES_SINGLE_COUNT ?? 3_000);
const batchAppends = Number(process.env.BENCH_ES_BATCH_COUNT ?? 300);
const perBatch = 100;
const streamCount = 100;
const bigStream = Number(process.env.BENCH_ES_STREAM_EVENTS ?? 10_000);
const loads = Number(process.env.BENCH_ES_LOAD_REPEAT ?? 20);
const projectionEvents = Number(process.env.BENCH_ES_PROJECTION_COUNT ?? 100_000);
const rounds = 3;

type Placed = { type: 'ItemAdded'; data: { sku: string; quantity: number; price: number } };

const item = (i: number): Placed => ({ type: 'ItemAdded', data: { sku: `sku-${i % 50}`, quantity: 1 + (i % 3), price: 100 + (i % 900) } });

interface Tally {
  items: number;
  total: number;
}
const initialState = (): Tally => ({ items: 0, total: 0 });
const evolve = (state: Tally, event: { data: Placed['data'] }): Tally => ({
  items: state.items + event.data.quantity,
  total: state.total + event.data.quantity * event.data.price,
});

/** The statement Postbox's upsert projection sends per batch, for timing the same writes without reading. */
function upsertSql(table: string): string {
  return `insert into "${table}" ("global_position", "stream_id", "amount")
          select "global_position", "stream_id", "amount" from json_populate_recordset(null::"${table}", $1::json)
          on conflict ("global_position") do update set "stream_id" = excluded."stream_id", "amount" = excluded."amount"`;
}

type Appender = (streamId: string, events: Placed[], expected: number) => Promise<unknown>;

/** Every order of 0..n-1. */
function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((order) => Array.from({ length: n }, (_, at) => [...order.slice(0, at), n - 1, ...order.slice(at)]));
}

/**
 * Appends `rounds` times `size` events, each round to one of streamCount streams with its expected
 * version. The writers take turns round by round, each round in the next of all their possible
 * orders, so that every writer goes first, last and after each other writer equally often: an
 * append can be slowed by the one just before it (its commit, its cache footprint), and noise
 * falls on all alike. Returns each writer's milliseconds per append.
 */
async function appendRace(contenders: [string, Appender][], rounds: number, size: number): Promise<Map<string, number[]>> {
  const spent = new Map<string, number[]>(contenders.map(([name]) => [name, []]));
  const versions = new Map<string, number>();
  const orders = permutations(contenders.length);
  let n = 0;
  for (let round = 0; round < rounds; round++) {
    const events = Array.from({ length: size }, () => item(n++));
    for (const index of orders[round % orders.length] as number[]) {
      const [name, append] = contenders[index] as [string, Appender];
      const streamId = `${name.replace(/[^a-z]/g, '')}${size}-${round % streamCount}`;
      const expected = versions.get(streamId) ?? 0;
      const started = performance.now();
      await append(streamId, events, expected);
      spent.get(name)?.push(performance.now() - started);
      versions.set(streamId, expected + size);
    }
  }
  return spent;
}

async function main(): Promise<void> {
  const database = await createDatabase('event_store');
  const postbox = await Postbox.create({ databaseUrl: database.url, migrate: 'auto' });
  const emmett = getPostgreSQLEventStore(database.url);
  const client = await connect(database.url);
  // The two other ways of appending write to a database of their own on the same server, so that Postbox's log
  // and Emmett's table hold the same events when they are compared, not three writers' events against one's.
  const variantsDatabase = await createDatabase('event_store_variants');
  const variants = await Postbox.create({ databaseUrl: variantsDatabase.url, migrate: 'auto' });
  try {
    const { rows: durability } = await client.query<{ name: string; setting: string }>(
      `select name, setting from pg_settings
       where name in ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', 'commit_delay') order by name`,
    );
    console.log(
      `Both stores on database ${database.name} of one server, Postbox's two other ways of appending on ${variantsDatabase.name}: ` +
        durability.map((d) => `${d.name}=${d.setting}`).join(', '),
    );
    const store = postbox.eventStore();
    const variantStore = variants.eventStore();
    await emmett.appendToStream('warmup-1', [item(0)]);
    await store.append('warmup-1', item(0));
    await variantStore.append('warmup-1', item(0));

    // A group reading the `postboxheard…` categories holds a lease (no process behind it), so those appends send the NOTIFY.
    await variants.db.query(
      `with g as (insert into postbox.consumer_groups (group_name, topics) values ('bench-listener', $1::text[]) returning group_name)
       insert into postbox.group_partitions (group_name, partition, lease_owner, lease_expires_at)
       select group_name, 0, 'bench', now() + interval '1 day' from g`,
      [[`postboxheard1`, `postboxheard${perBatch}`]],
    );
    const contenders: [string, Appender][] = [
      ['emmett', (id, events, expected) => emmett.appendToStream(id, events, { expectedStreamVersion: BigInt(expected) })],
      ['postbox', (id, events, expected) => store.append(id, events, { expectedVersion: expected })],
      ['postboxheard', (id, events, expected) => variantStore.append(id, events, { expectedVersion: expected })],
      [
        'postboxtx',
        (id, events, expected) => variants.transaction((tx) => variantStore.append(id, events, { expectedVersion: expected, tx })),
      ],
    ];
    const label: Record<string, string> = {
      emmett: 'Emmett 0.42 appendToStream',
      postbox: 'Postbox append (one statement)',
      postboxheard: 'Postbox append, category read by a leased group (NOTIFY)',
      postboxtx: 'Postbox append in BEGIN … COMMIT',
    };
    const appendRows: Cell[][] = [];
    const summary: Cell[][] = [];
    for (const [rounds, size] of [
      [singleAppends, 1],
      [batchAppends, perBatch],
    ] as const) {
      const spent = await appendRace(contenders, rounds, size);
      const rate = (name: string) =>
        perSecond(
          rounds * size,
          (spent.get(name) as number[]).reduce((sum, ms) => sum + ms, 0),
        );
      const median = (name: string) => percentile(spent.get(name) as number[], 50);
      for (const [name] of contenders) {
        appendRows.push([
          `${size} per tx`,
          label[name] as string,
          rounds * size,
          rate(name),
          times(rate(name), rate('emmett')),
          median(name),
          times(median('emmett'), median(name)),
        ]);
      }
      const events = `${size} event${size === 1 ? '' : 's'} per tx`;
      summary.push(
        [`append, ${events}: Postbox / Emmett`, times(rate('postbox'), rate('emmett'), 2), '≥ 1.5×'],
        [`append, ${events}: Postbox / Emmett, by median append`, times(median('emmett'), median('postbox'), 2), ''],
        [`append, ${events}, category read by a leased group: Postbox / Emmett`, times(rate('postboxheard'), rate('emmett')), ''],
      );
    }
    printTable(
      `Append: ${streamCount} streams, expected version checked, every append its own transaction`,
      ['batch', 'writer', 'events', 'events/s', 'of Emmett', 'median ms', 'of Emmett, by median'],
      appendRows,
    );

    for (const batch of chunks(bigStream, 1_000, item)) {
      await store.append('tally-big', batch);
      await emmett.appendToStream('tally-big', batch);
    }
    const aggregate = { name: 'tally', initialState, evolve, snapshots: { policy: { every: 1_000 } } };
    await store.aggregate<Tally, Placed>('tally-big', aggregate, { saveSnapshots: true });
    await store.append('tally-big', [item(1), item(2), item(3)]);
    const loaders: [string, () => Promise<unknown>][] = [
      ['full', () => store.aggregate<Tally, Placed>('tally-big', { initialState, evolve })],
      ['snapshot', () => store.aggregate<Tally, Placed>('tally-big', aggregate)],
      ['emmett', () => emmett.aggregateStream<Tally, Placed>('tally-big', { initialState, evolve })],
    ];
    const loadMs = new Map<string, number>();
    for (let i = 0; i < loads; i++) {
      for (let turn = 0; turn < loaders.length; turn++) {
        const [name, fn] = loaders[(i + turn) % loaders.length] as [string, () => Promise<unknown>];
        const { ms } = await timed(fn);
        loadMs.set(name, (loadMs.get(name) ?? 0) + ms / loads);
      }
    }
    const full = loadMs.get('full') as number;
    const snapshotted = loadMs.get('snapshot') as number;
    const emmettFull = loadMs.get('emmett') as number;
    printTable(
      `Aggregate load: one stream of ${bigStream.toLocaleString('en-US')} events (+3 after the snapshot), ${loads} loads each, taking turns`,
      ['loader', 'ms per load', 'loads/s', 'vs full replay'],
      [
        ['Postbox aggregateStream, full replay', full, 1000 / full, '1.0×'],
        ['Postbox aggregateStream, snapshot + 3-event tail', snapshotted, 1000 / snapshotted, times(full, snapshotted)],
        ['Emmett 0.42 aggregateStream, full replay', emmettFull, 1000 / emmettFull, times(full, emmettFull)],
      ],
    );
    summary.push(['aggregate load, snapshot / full replay', times(full, snapshotted), 'faster']);

    const category = 'line';
    let last = 0n;
    for (const batch of chunks(projectionEvents, 1_000, item)) {
      const result = await store.append(`${category}-${last % 100n}`, batch);
      last = result.position.globalPosition;
    }
    for (let round = 0; round < rounds; round++) {
      await client.query(
        `create table line_items_${round}_v1 (global_position bigint primary key, stream_id text not null, amount int not null)`,
      );
      await client.query(`create table line_items_raw_${round} (like line_items_${round}_v1 including all)`);
    }
    const until = async (group: string) => {
      for (;;) {
        const { rows } = await client.query<{ at: string }>(
          'select checkpoint_position::text as at from postbox.group_partitions where group_name = $1 and partition = 0',
          [group],
        );
        if (rows[0] && BigInt(rows[0].at) >= last) return;
        await sleep(2);
      }
    };
    const upsertOnly = async (round: number) => {
      const { rows: all } = await client.query<{ global_position: string; stream_id: string; amount: number }>(
        `select global_position::text, stream_id, ((payload->>'quantity')::int * (payload->>'price')::int) as amount
         from postbox.messages where topic = $1 order by global_position`,
        [category],
      );
      return (
        await timed(async () => {
          for (const batch of chunks(all.length, 1_000, (i) => all[i] as (typeof all)[number])) {
            await client.query('begin');
            await client.query(upsertSql(`line_items_raw_${round}`), [JSON.stringify(batch)]);
            await client.query('commit');
          }
        })
      ).ms;
    };
    const noop = async (group: string, transactional: boolean) =>
      (
        await timed(async () => {
          const consumer = postbox.consumer({ group, topics: [category], transactional, batchSize: 1_000, handleBatch: async () => {} });
          await consumer.start();
          await until(group);
          await consumer.stop();
        })
      ).ms;
    // A row per event, as a user writes it: the runner upserts each batch's rows in one statement.
    const lines = (round: number) =>
      defineProjection<Placed>({
        name: `line-items-${round}`,
        categories: [category],
        upsert: {
          table: ({ table }) => table(`line_items_${round}`),
          key: 'global_position',
          row: (event) => ({
            global_position: event.globalPosition,
            stream_id: event.streamId,
            amount: event.data.quantity * event.data.price,
          }),
        },
      });
    const projected = async (round: number) =>
      (
        await timed(async () => {
          const runner = store.projection(lines(round), { batchSize: 1_000 });
          await runner.start();
          await until(`projection:line-items-${round}:v1`);
          await runner.stop();
        })
      ).ms;
    await noop('warm-up', false);
    const readers: [string, (round: number) => Promise<number>][] = [
      ['plain', (round) => noop(`noop-plain-${round}`, false)],
      ['transactional', (round) => noop(`noop-transactional-${round}`, true)],
      ['projection', projected],
      ['upserts', (round) => upsertOnly(round)],
    ];
    const samples = new Map<string, number[]>();
    for (let round = 0; round < rounds; round++) {
      for (let turn = 0; turn < readers.length; turn++) {
        const [name, read] = readers[(round + turn) % readers.length] as [string, (round: number) => Promise<number>];
        samples.set(name, [...(samples.get(name) ?? []), await read(round)]);
      }
    }
    const median = (name: string) => percentile(samples.get(name) as number[], 50);
    const noopPlain = median('plain');
    const noopTx = median('transactional');
    const projection = median('projection');
    const upsertMs = median('upserts');
    const { rows: projectedRows } = await client.query<{ n: number }>('select count(*)::int as n from line_items_0_v1');
    if (Number(projectedRows[0]?.n) !== projectionEvents)
      throw new Error(`projection wrote ${projectedRows[0]?.n} rows, not ${projectionEvents}`);
    const rate = (ms: number) => perSecond(projectionEvents, ms);
    printTable(
      `Async projection: ${projectionEvents.toLocaleString('en-US')} events of one category, batches of 1,000; median of ${rounds} rounds taking turns`,
      ['reader', 'seconds', 'events/s', 'of no-op group'],
      [
        ['no-op consumer group', noopPlain / 1000, rate(noopPlain), '100%'],
        ['no-op consumer group, transactional', noopTx / 1000, rate(noopTx), ratio(rate(noopTx), rate(noopPlain))],
        ['projection: one-row upsert per event', projection / 1000, rate(projection), ratio(rate(projection), rate(noopPlain))],
        ['the same upserts alone, no reading (1,000 per tx)', upsertMs / 1000, rate(upsertMs), ratio(rate(upsertMs), rate(noopPlain))],
      ],
    );
    const bound = 1000 / (noopTx + upsertMs);
    summary.push(
      ['async projection / no-op group', ratio(rate(projection), rate(noopPlain)), '≥ 50%'],
      ['async projection / transactional no-op group', ratio(rate(projection), rate(noopTx)), ''],
      ['async projection / (transactional no-op + upserts alone)', ratio(rate(projection), projectionEvents * bound), ''],
    );
    printTable('Event store: ratios', ['comparison', 'ratio', 'target'], summary);
  } finally {
    await client.end();
    await emmett.close();
    await postbox.close();
    await variants.close();
    await Promise.all([database.drop(), variantsDatabase.drop()]);
  }
}

await main();
