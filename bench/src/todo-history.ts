import { availableParallelism } from 'node:os';
import type { Kafka, Message } from 'kafkajs';
import type pg from 'pg';
import { asExecutor, defaults, type OutgoingMessage, Postbox } from 'postbox';
import { createKafka } from 'postbox/kafka';
import { loadConfig } from '../../apps/todo-history/src/config.js';
import { appDefaults } from '../../apps/todo-history/src/defaults.js';
import type { HistoryRow } from '../../apps/todo-history/src/history/history-row.js';
import { arrayColumns, arrayLiteral, writeHistory } from '../../apps/todo-history/src/history/history-writer.js';
import { logColumns } from '../../apps/todo-history/src/queries/log-queries.js';
import { type System, startSystem } from '../../apps/todo-history/src/system.js';
import { type Change, type EventType, todoEvent, todoMessage } from '../../apps/todo-history/src/todos/todo-events.js';
import { startMockCluster } from '../../packages/postbox/test/support/kafka-mock.js';
import { ServerCpu } from './support/cpu.js';
import { type BenchDatabase, connect, createDatabase } from './support/database.js';
import { chunks } from './support/messages.js';
import { type Cell, printTable, ratio, times } from './support/table.js';
import { percentile, perSecond, sleep, timed } from './support/timing.js';

const total = Number(process.env.BENCH_TODO_INGEST_COUNT ?? 200_000);
/** Events of the one-row-insert baselines, run in two halves: one before and one after the route they are compared with. */
const baselineCount = Number(process.env.BENCH_TODO_BASELINE_COUNT ?? 10_000);
/** The mock cluster serves only about the first 50,000 events of a topic (20 MB), so the Kafka variant stays well below. */
const kafkaCount = Number(process.env.BENCH_TODO_KAFKA_COUNT ?? 20_000);
const queryRows = Number(process.env.BENCH_TODO_QUERY_ROWS ?? 1_000_000);
const queryRequests = Number(process.env.BENCH_TODO_QUERY_REQUESTS ?? 500);
const groups = 50;
const tasks = 5_000;
const topic = 'todo-history-events';
const loadBatch = 10_000;
const pollMs = 50;
/** The Kafka variant stops after this long if it has not finished; its rate is over the rows it stored. */
const kafkaSeconds = Number(process.env.BENCH_TODO_KAFKA_SECONDS ?? 60);
const eventTypes: EventType[] = ['created', 'updated', 'status_changed', 'commented', 'updated'];

const groupId = (g: number) => `00000000-0000-4000-8000-${String(g).padStart(12, '0')}`;
const taskId = (t: number) => `00000000-0000-4000-9000-${String(t).padStart(12, '0')}`;

/** Event i: one in ten is a Group event; tasks belong to group t % 50; timestamps a millisecond apart, ending at `now`. */
function change(i: number, now: number): Change {
  const t = (i * 7919) % tasks;
  const g = t % groups;
  const group = { groupId: groupId(g), name: `Group ${g}`, workspace: `workspace-${g % 5}` };
  const task = i % 10 === 0 ? undefined : { taskId: taskId(t), name: `Task ${t}` };
  return {
    eventType: eventTypes[i % eventTypes.length] ?? 'updated',
    group,
    task,
    changes: `change ${i}`,
    user: `user-${i % 20}`,
    at: new Date(now - (total - i)),
  };
}

async function countRows(client: pg.Client, table: string): Promise<number> {
  const { rows } = await client.query<{ n: number }>(`select count(*)::int as n from ${table}`);
  return rows[0]?.n ?? 0;
}

/**
 * The CPU a run costs: this Node process, plus the PostgreSQL server processes of its database
 * (ServerCpu: all of those that appear while it runs, sampled as they come and go). Unlike a rate,
 * it hardly moves with the load of a shared machine. The Kafka broker's CPU is not in it.
 */
class RunCpu {
  private readonly node = process.cpuUsage();
  private stopped: Promise<number | undefined> | undefined;

  private constructor(private readonly server: ServerCpu) {}

  /** client: a connection of its own, or one used only between samples. */
  static async start(client: pg.Client, database: string): Promise<RunCpu> {
    return new RunCpu(await ServerCpu.start(client, database, pollMs));
  }

  /** Stops sampling: the run's CPU milliseconds; undefined when the server's processes cannot be read. */
  stop(): Promise<number | undefined> {
    this.stopped ??= this.server.stop().then((server) => {
      const { user, system } = process.cpuUsage(this.node);
      return server === undefined ? undefined : (user + system) / 1000 + server;
    });
    return this.stopped;
  }
}

interface Run {
  rows: number;
  ms: number;
  /** CPU milliseconds of the whole run (Node and PostgreSQL); undefined when the server is not on this machine. */
  cpuMs: number | undefined;
}

interface Ingest extends Run {
  /** From startSystem() to the first stored row: start-up, migrations check, group join. */
  startMs: number;
}

/** Starts the real system and waits until todo_event_logs holds `count` rows. */
async function drain(env: Record<string, string>, database: BenchDatabase, count: number, deadlineMs: number): Promise<Ingest> {
  const client = await connect(database.url);
  const cpu = await RunCpu.start(client, database.name);
  const started = performance.now();
  let system: System | undefined;
  try {
    system = await startSystem(loadConfig({ DATABASE_URL: database.url, PORT: '0', OUTBOX_INTERVAL: '100ms', LOG_LEVEL: 'warn', ...env }));
    let firstAt = 0;
    let rows = 0;
    for (;;) {
      // The id table is written in the same statement as the rows and is not partitioned: a cheaper count.
      rows = await countRows(client, 'todo_event_log_ids');
      const at = performance.now();
      if (rows > 0 && firstAt === 0) firstAt = at;
      if (rows >= count || at - started > deadlineMs)
        return { rows, ms: at - firstAt, startMs: firstAt - started, cpuMs: await cpu.stop() };
      await sleep(pollMs);
    }
  } finally {
    await cpu.stop();
    await system?.close();
    await client.end();
  }
}

const addRuns = (a: Run, b: Run): Run => ({
  rows: a.rows + b.rows,
  ms: a.ms + b.ms,
  cpuMs: a.cpuMs === undefined || b.cpuMs === undefined ? undefined : a.cpuMs + b.cpuMs,
});

/** Runs fn while measuring its CPU (Node and the server processes of the database) on a sampling connection of its own. */
async function withCpu(database: BenchDatabase, fn: () => Promise<Omit<Run, 'cpuMs'>>): Promise<Run> {
  const sampler = await connect(database.url);
  try {
    const cpu = await RunCpu.start(sampler, database.name);
    try {
      const run = await fn();
      return { ...run, cpuMs: await cpu.stop() };
    } finally {
      await cpu.stop();
    }
  } finally {
    await sampler.end();
  }
}

/**
 * The log variant: N events enqueued untimed in transactions of 10,000; then the one-row-insert
 * consumer stores the first half of its events, the history consumer drains all N, and the
 * one-row-insert consumer stores the second half. Running the baseline on both sides of the route evens out a machine whose
 * load changes during the run.
 */
/** HISTORY_PARTITIONS for the app's route on the log (BENCH_TODO_HISTORY_PARTITIONS); unset, the app's default. */
const historyEnv: Record<string, string> = process.env.BENCH_TODO_HISTORY_PARTITIONS
  ? { HISTORY_PARTITIONS: process.env.BENCH_TODO_HISTORY_PARTITIONS }
  : {};

async function ingestFromLog(database: BenchDatabase, now: number): Promise<{ route: Ingest; baseline: Run; limits: WriteLimits }> {
  // Let the app create its schema once, so that the load below writes into a migrated database.
  const setup = await startSystem(loadConfig({ DATABASE_URL: database.url, PORT: '0', LOG_LEVEL: 'warn', ...historyEnv }));
  await setup.close();
  const postbox = await Postbox.create({ databaseUrl: database.url, migrate: 'auto' });
  const client = await connect(database.url);
  try {
    for (const batch of chunks(total, loadBatch, (i): OutgoingMessage => todoMessage(topic, change(i, now)))) {
      await client.query('begin');
      await postbox.enqueue(client, batch);
      await client.query('commit');
    }
  } finally {
    await client.end();
    await postbox.close();
  }
  const before = await oneRowBaseline(database, 0, Math.floor(baselineCount / 2));
  const route = await drain(historyEnv, database, total, 300_000);
  const after = await oneRowBaseline(database, Math.floor(baselineCount / 2), baselineCount - Math.floor(baselineCount / 2));
  const limits = await writeLimits(database);
  return { route, baseline: addRuns(before, after), limits };
}

interface KafkaIngest {
  route: Ingest;
  /** One-row inserts from the same topic: one INSERT per message, offsets committed every second. */
  baseline: Run;
  /** A KafkaJS eachBatch consumer that only parses each value: how fast the mock cluster serves the topic. */
  raw: Run;
}

/**
 * The Kafka variant: the same events produced untimed with KafkaJS to a 4-partition topic of the
 * mock cluster, 1,000 per send. Then, each from the beginning of the topic in a group of its own:
 * the raw read, half of the one-row-insert baseline, the history route with kafkaSource (the app with
 * KAFKA_BROKERS), and the other half of the baseline.
 */
async function ingestFromKafka(database: BenchDatabase, now: number): Promise<KafkaIngest> {
  const cluster = await startMockCluster();
  try {
    await cluster.createTopic(topic, 4);
    const kafka = createKafka({ brokers: cluster.brokers, clientId: 'bench' });
    const producer = kafka.producer();
    await producer.connect();
    for (const batch of chunks(kafkaCount, 1_000, (i): Message => {
      const c = change(i, now);
      return { key: c.group.groupId, value: JSON.stringify(todoEvent(c)) };
    })) {
      await producer.send({ topic, acks: -1, messages: batch });
    }
    await producer.disconnect();
    // Let the app create its schema (and the baseline's table) before the baseline writes to it.
    const setup = await startSystem(loadConfig({ DATABASE_URL: database.url, PORT: '0', LOG_LEVEL: 'warn' }));
    await setup.close();
    const raw = await rawKafkaRead(kafka, database);
    const half = Math.min(Math.floor(baselineCount / 2), kafkaCount);
    const before = await oneRowKafkaBaseline(kafka, database, 'one-row-before', half);
    const route = await drain({ KAFKA_BROKERS: cluster.bootstrap, KAFKA_IDEMPOTENT: 'false' }, database, kafkaCount, kafkaSeconds * 1_000);
    const after = await oneRowKafkaBaseline(kafka, database, 'one-row-after', half);
    return { route, baseline: addRuns(before, after), raw };
  } finally {
    await cluster.stop();
  }
}

/** Waits until done() is true or the time runs out. */
async function until(done: () => boolean, seconds: number): Promise<void> {
  const deadline = performance.now() + seconds * 1_000;
  while (!done() && performance.now() < deadline) await sleep(1);
}

/** The read limit of the mock cluster: KafkaJS eachBatch, 4 partitions at once, the source's fetch sizes, JSON.parse only. */
async function rawKafkaRead(kafka: Kafka, database: BenchDatabase): Promise<Run> {
  const consumer = kafka.consumer({
    groupId: 'bench-raw-read',
    maxBytes: defaults.kafkaSource.maxBytes,
    maxBytesPerPartition: defaults.kafkaSource.maxBytesPerPartition,
    maxWaitTimeInMs: defaults.kafkaSource.maxWaitTimeMs,
  });
  await consumer.connect();
  try {
    return await withCpu(database, async () => {
      let read = 0;
      let firstAt = 0;
      let lastAt = 0;
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        partitionsConsumedConcurrently: defaults.kafkaSource.partitionsConsumedConcurrently,
        eachBatch: async ({ batch }) => {
          if (firstAt === 0) firstAt = performance.now();
          for (const message of batch.messages) JSON.parse(message.value?.toString() ?? 'null');
          read += batch.messages.length;
          lastAt = performance.now();
        },
      });
      await until(() => read >= kafkaCount, kafkaSeconds);
      return { rows: read, ms: lastAt - firstAt };
    });
  } finally {
    await consumer.disconnect();
  }
}

/**
 * One-row inserts from Kafka: one message at a time, one autocommit INSERT each into
 * one_row_event_logs, offsets committed every second. Timed from the first message to the
 * count-th row.
 */
async function oneRowKafkaBaseline(kafka: Kafka, database: BenchDatabase, groupId: string, count: number): Promise<Run> {
  const client = await connect(database.url);
  const consumer = kafka.consumer({ groupId });
  try {
    await client.query('create table if not exists one_row_event_logs (like todo_event_logs including all)');
    await consumer.connect();
    return await withCpu(database, async () => {
      let stored = 0;
      let firstAt = 0;
      let lastAt = 0;
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommitInterval: 1_000,
        eachMessage: async ({ message, partition }) => {
          if (stored >= count) return;
          if (firstAt === 0) firstAt = performance.now();
          const event = JSON.parse(message.value?.toString() ?? 'null') as ReturnType<typeof todoEvent>;
          await client.query(
            oneRowInsert,
            oneRowParameters(event, `kafka:${topic}:${partition}:${message.offset}`, partition, message.offset),
          );
          stored += 1;
          lastAt = performance.now();
          // Stop fetching what it will not store, so that the CPU measured is the baseline's own.
          if (stored === count) consumer.pause([{ topic }]);
        },
      });
      await until(() => stored >= count, kafkaSeconds);
      return { rows: stored, ms: lastAt - firstAt };
    });
  } finally {
    await consumer.disconnect();
    await client.end();
  }
}

const oneRowInsert = `insert into one_row_event_logs ("timestamp", event_type, entity, entity_id, group_id, group_name, task_id, task_name,
  changes, user_name, workspace, event_data, message_id, source_topic, source_partition, source_offset)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`;

/** The one-row INSERT's parameters for one event: its todo_event_logs columns, the whole event as event_data. */
function oneRowParameters(event: ReturnType<typeof todoEvent>, messageId: string, partition: number | null, offset: string): unknown[] {
  const p = event.payload;
  return [
    event.timestamp,
    event.eventType,
    p.entity,
    p.entityId,
    p.groupId,
    p.groupName,
    p.taskId,
    p.taskName,
    p.changes,
    p.user,
    p.workspace,
    JSON.stringify(event),
    messageId,
    topic,
    partition,
    offset,
  ];
}

/**
 * One-row inserts from the log: reads `count` events from the `skip`-th on (1,000 a read, the
 * reads inside its time) and stores each with an INSERT of its own, autocommit, one after another,
 * into one_row_event_logs, a plain copy of todo_event_logs (same columns, primary key and indexes).
 */
async function oneRowBaseline(database: BenchDatabase, skip: number, count: number): Promise<Run> {
  const client = await connect(database.url);
  try {
    await client.query('create table if not exists one_row_event_logs (like todo_event_logs including all)');
    let after = '0';
    if (skip > 0) {
      const { rows } = await client.query<{ after: string }>(
        'select global_position::text as after from postbox.messages where topic = $1 order by global_position offset $2 limit 1',
        [topic, skip - 1],
      );
      after = rows[0]?.after ?? after;
    }
    return await withCpu(database, async () => {
      let stored = 0;
      const started = performance.now();
      while (stored < count) {
        const { rows } = await client.query<{ message_id: string; payload: ReturnType<typeof todoEvent>; global_position: string }>(
          `select message_id, payload, global_position::text as global_position from postbox.messages
           where topic = $1 and global_position > $2 order by global_position limit 1000`,
          [topic, after],
        );
        if (rows.length === 0) break;
        for (const row of rows.slice(0, count - stored)) {
          await client.query(oneRowInsert, oneRowParameters(row.payload, row.message_id, null, row.global_position));
          stored++;
        }
        after = rows.at(-1)?.global_position ?? after;
      }
      return { rows: stored, ms: performance.now() - started };
    });
  } finally {
    await client.end();
  }
}

/** What the database alone can store: the route's own rows, already decoded, written again with nothing read. */
interface WriteLimits {
  /** A no-op transactional consumer group reading the same messages from the log, batches of the route's size. */
  read: Run;
  /** The app's writeHistory (lock, id table, rows, NOTIFY), one autocommit statement per batch, one connection. */
  writer: Run;
  /** The rows alone into todo_event_logs (no id table, lock or NOTIFY), one statement per batch, one connection. */
  table: Run;
  /** The same, from two connections at once, each with half the batches. */
  tableTwo: Run;
}

const tableOnlyInsert = `insert into todo_event_logs (${arrayColumns.map((c) => `"${c}"`).join(', ')}, event_data)
select ${arrayColumns.map((c) => `r."${c}"`).join(', ')}, r.e::jsonb from rows from (
  unnest($1::text[], $2::timestamptz[], $3::boolean[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
         $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::integer[], $16::bigint[]),
  json_array_elements($17::json)
) as r(${arrayColumns.map((c) => `"${c}"`).join(', ')}, e)`;

/** A run of fn, which returns the rows it stored: timed, with its CPU. */
function timedRows(database: BenchDatabase, fn: () => Promise<number>): Promise<Run> {
  return withCpu(database, async () => {
    const { ms, value } = await timed(fn);
    return { rows: value, ms };
  });
}

/** The log's own cost of delivering the events: a transactional consumer group that stores nothing. */
async function readLimit(database: BenchDatabase): Promise<Run> {
  const postbox = await Postbox.create({ databaseUrl: database.url, migrate: 'auto' });
  try {
    const consumer = postbox.consumer({
      group: 'bench-read-limit',
      topics: [topic],
      transactional: true,
      batchSize: appDefaults.history.batchSize,
      handleBatch: async () => {},
    });
    const run = await timedRows(database, async () => {
      await consumer.start();
      while (consumer.handled < total) await sleep(5);
      return consumer.handled;
    });
    await consumer.stop();
    return run;
  } finally {
    await postbox.close();
  }
}

/**
 * The limits of todo_event_logs on this machine: the route's stored rows are read back, the tables
 * are emptied, and the rows are written again in batches of the route's size, three ways (see
 * WriteLimits). The parameters of the table-only insert are built before its clock starts.
 */
async function writeLimits(database: BenchDatabase): Promise<WriteLimits> {
  const read = await readLimit(database);
  const client = await connect(database.url);
  const second = await connect(database.url);
  try {
    const { rows } = await client.query<HistoryRow>(
      `select message_id, "timestamp"::text as "timestamp", timestamp_fallback, event_type, entity, entity_id, group_id, group_name,
              task_id, task_name, changes, user_name, workspace, event_data::text as event_data, source_topic, source_partition,
              source_offset::text as source_offset
       from todo_event_logs order by id`,
    );
    const batches: HistoryRow[][] = [];
    for (let i = 0; i < rows.length; i += appDefaults.history.batchSize) batches.push(rows.slice(i, i + appDefaults.history.batchSize));
    const empty = () => client.query('truncate todo_event_logs, todo_event_log_ids');

    await empty();
    const writer = await timedRows(database, async () => {
      let stored = 0;
      for (const batch of batches) stored += await writeHistory(asExecutor(client), batch);
      return stored;
    });

    const parameters = batches.map((batch) => [
      ...arrayColumns.map((column) => arrayLiteral(batch.map((row) => row[column]))),
      `[${batch.map((row) => row.event_data).join(',')}]`,
    ]);
    const insertAll = async (connection: pg.Client, share: unknown[][]) => {
      let stored = 0;
      for (const values of share) stored += (await connection.query(tableOnlyInsert, values)).rowCount ?? 0;
      return stored;
    };
    await empty();
    const table = await timedRows(database, () => insertAll(client, parameters));
    await empty();
    const tableTwo = await timedRows(database, async () => {
      const stored = await Promise.all([
        insertAll(
          client,
          parameters.filter((_, i) => i % 2 === 0),
        ),
        insertAll(
          second,
          parameters.filter((_, i) => i % 2 === 1),
        ),
      ]);
      return stored[0] + stored[1];
    });
    return { read, writer, table, tableTwo };
  } finally {
    await second.end();
    await client.end();
  }
}

/** 1,000,000 rows over 30 days of daily partitions, made on the server; then ANALYZE. */
async function fillLogs(client: pg.Client): Promise<void> {
  await client.query('truncate todo_event_logs, todo_event_log_ids');
  await client.query(`select todo_history.ensure_event_log_partitions(37, (now() at time zone 'UTC')::date - 30)`);
  await client.query(
    `insert into todo_event_logs ("timestamp", event_type, entity, entity_id, group_id, group_name, task_id, task_name,
       changes, user_name, workspace, event_data, message_id, source_topic, source_offset)
     select ts, et, case when grp_event then 'Group' else 'Task' end,
            case when grp_event then gid else tid end, gid, 'Group ' || g,
            case when grp_event then null else tid end, case when grp_event then null else 'Task ' || t end,
            'change ' || i, 'user-' || (i % 20), 'workspace-' || (g % 5),
            jsonb_build_object('eventType', et, 'timestamp', ts, 'payload', jsonb_build_object('entityId', case when grp_event then gid else tid end,
              'groupId', gid, 'taskId', case when grp_event then null else tid end, 'changes', 'change ' || i)),
            md5(i::text), $2, i
     from (
       select i, t, t % ${groups} as g, i % 10 = 0 as grp_event,
              '00000000-0000-4000-8000-' || lpad((t % ${groups})::text, 12, '0') as gid,
              '00000000-0000-4000-9000-' || lpad(t::text, 12, '0') as tid,
              (array['created', 'updated', 'status_changed', 'commented', 'updated'])[1 + i % 5] as et,
              now() - (($1::bigint - i) * interval '30 days') / $1::bigint as ts
       from (select i, (i * 7919) % ${tasks} as t from generate_series(1, $1::bigint) as i) s
     ) r`,
    [queryRows, topic],
  );
  await client.query('analyze todo_event_logs');
}

interface Latencies {
  api: number[];
  direct: number[];
}

/**
 * GET /api/logs/group/:id through Fastify's inject (the whole HTTP pipeline in-process, no socket)
 * against the same statement on a pg client, taking turns request by request with the same group.
 */
async function queryRace(system: System, client: pg.Client): Promise<Latencies> {
  const sql = `select ${logColumns} from todo_event_logs l where l.group_id = $1
     order by l."timestamp" desc, l.id desc limit $2`;
  const result: Latencies = { api: [], direct: [] };
  const warmup = 50;
  for (let n = 0; n < warmup + queryRequests; n++) {
    const group = groupId(Math.floor(Math.random() * groups));
    const contenders: [keyof Latencies, () => Promise<void>][] = [
      [
        'api',
        async () => {
          const response = await system.app.inject({ method: 'GET', url: `/api/logs/group/${group}` });
          if (response.statusCode !== 200 || response.json().items.length !== 100) throw new Error(`API answered ${response.statusCode}`);
        },
      ],
      [
        'direct',
        async () => {
          const { rows } = await client.query(sql, [group, 101]);
          if (rows.length !== 101) throw new Error(`direct query returned ${rows.length} rows`);
        },
      ],
    ];
    if (n % 2 === 1) contenders.reverse();
    for (const [name, run] of contenders) {
      const start = performance.now();
      await run();
      if (n >= warmup) result[name].push(performance.now() - start);
    }
  }
  return result;
}

async function main(): Promise<void> {
  const now = Date.now();
  const logDb = await createDatabase('todo_history');
  const kafkaDb = await createDatabase('todo_history_kafka');
  try {
    const log = await ingestFromLog(logDb, now);
    let kafka: KafkaIngest | undefined;
    let kafkaError: string | undefined;
    try {
      kafka = await ingestFromKafka(kafkaDb, now);
    } catch (error) {
      kafkaError = (error as Error).message;
      console.error(`Kafka ingest failed: ${kafkaError}`);
    }

    const rate = (run: { rows: number; ms: number }) => perSecond(run.rows, run.ms);
    const cpuPerEvent = (run: Run) => (run.cpuMs === undefined ? undefined : (run.cpuMs * 1000) / run.rows);
    const cpuCell = (run: Run): Cell => cpuPerEvent(run) ?? 'n/a';
    const cpuRatio = (run: Run, baseline: Run): string => {
      const mine = cpuPerEvent(run);
      const theirs = cpuPerEvent(baseline);
      return mine === undefined || theirs === undefined ? 'n/a' : times(theirs, mine);
    };
    /** baseline: the run compared with; 'self' for a baseline itself, 'none' for the raw read. */
    const ingestRow = (name: string, run: Run & { startMs?: number }, baseline: Run | 'self' | 'none', raw?: Run): Cell[] => [
      name,
      run.rows.toLocaleString('en-US'),
      (run.ms / 1000).toFixed(2),
      rate(run),
      baseline === 'self' ? '1.0×' : baseline === 'none' ? '' : times(rate(run), rate(baseline)),
      cpuCell(run),
      baseline === 'self' ? '1.0×' : baseline === 'none' ? '' : cpuRatio(run, baseline),
      raw ? ratio(rate(run), rate(raw)) : '',
      run.startMs === undefined ? '-' : (run.startMs / 1000).toFixed(1),
    ];
    printTable(
      `todo-history ingest: todo events into todo_event_logs (${groups} groups, ${tasks.toLocaleString('en-US')} tasks)`,
      [
        'consumer',
        'messages',
        'seconds',
        'msg/s',
        'of one-row inserts',
        'CPU µs/msg',
        'one-row inserts CPU ÷ this',
        'of raw Kafka read',
        'start s (untimed)',
      ],
      [
        ingestRow('history route, PostgreSQL log (logSource), batched insert', log.route, log.baseline),
        ingestRow('one-row inserts on the log: one INSERT per message, autocommit', log.baseline, 'self'),
        ...(kafka
          ? [
              ingestRow('history route, Kafka mock cluster (kafkaSource), batched insert', kafka.route, kafka.baseline, kafka.raw),
              ingestRow('one-row inserts on Kafka: one INSERT per message, offsets every 1 s', kafka.baseline, 'self', kafka.raw),
              ingestRow('raw KafkaJS eachBatch read of the topic (JSON.parse only)', kafka.raw, 'none', kafka.raw),
            ]
          : [['history route, Kafka (kafkaSource)', 'not measured', kafkaError ?? '', '', '', '', '', '', '']]),
      ],
    );

    const limitRow = (name: string, run: Run): Cell[] => [
      name,
      run.rows.toLocaleString('en-US'),
      rate(run),
      times(rate(run), rate(log.baseline)),
      cpuCell(run),
      ratio(rate(log.route), rate(run)),
    ];
    printTable(
      `todo-history write limits: the route's ${log.route.rows.toLocaleString('en-US')} rows, decoded, written again in batches of ${appDefaults.history.batchSize.toLocaleString('en-US')} with nothing read`,
      ['writer', 'rows', 'msg/s', 'of one-row inserts', 'CPU µs/msg', 'route (log) of this'],
      [
        limitRow('history route, PostgreSQL log (as above)', log.route),
        limitRow('reading alone: a no-op transactional consumer group on the log', log.limits.read),
        limitRow('writeHistory alone: id table, rows, NOTIFY; one connection', log.limits.writer),
        limitRow('rows alone into todo_event_logs; one connection', log.limits.table),
        limitRow('rows alone into todo_event_logs; two connections', log.limits.tableTwo),
        ['20 × one-row inserts on the log (the target)', '', rate(log.baseline) * 20, '20.0×', '', ''],
      ],
    );

    const tableCpu = cpuPerEvent(log.limits.table);
    const cpuBudget = (where: string, baseline: Run, read: Run | undefined, readName: string) => {
      const readCpu = read && cpuPerEvent(read);
      if (readCpu === undefined || tableCpu === undefined) return;
      const cores = availableParallelism();
      const budget = (cores * 1e6) / (20 * rate(baseline));
      console.log(
        `CPU budget at 20× one-row inserts on ${where} (${Math.round(20 * rate(baseline)).toLocaleString('en-US')} msg/s on ${cores} cores, both busy with nothing else): ` +
          `${budget.toFixed(1)} µs per message. ${readName} costs ${readCpu.toFixed(1)} µs and the rows alone ${tableCpu.toFixed(1)} µs: ` +
          `${(readCpu + tableCpu).toFixed(1)} µs before any decoding or deduplication.`,
      );
    };
    cpuBudget('the log', log.baseline, log.limits.read, 'Reading alone (no-op transactional group)');
    if (kafka) cpuBudget('Kafka', kafka.baseline, kafka.raw, 'The raw KafkaJS read (the broker not counted)');
    console.log('Targets: history route / one-row inserts ≥ 20× (log and Kafka); API p50 ÷ direct p50 ≤ 2×.');

    if (queryRequests > 0) await queryBenchmark(logDb);

    if (log.route.rows < total) throw new Error(`the log consumer stored ${log.route.rows} of ${total} events`);
    if (kafka && kafka.route.rows < kafkaCount) {
      console.log(`The Kafka variant stored ${kafka.route.rows} of ${kafkaCount} events in ${kafkaSeconds} s.`);
    }
  } finally {
    await Promise.all([logDb.drop(), kafkaDb.drop()]);
  }
}

/** GET /api/logs/group/:id through the API against the same SQL, on 1,000,000 rows (BENCH_TODO_QUERY_REQUESTS=0 skips it). */
async function queryBenchmark(logDb: BenchDatabase): Promise<void> {
  const system = await startSystem(loadConfig({ DATABASE_URL: logDb.url, PORT: '0', OUTBOX_INTERVAL: '100ms', LOG_LEVEL: 'warn' }));
  const client = await connect(logDb.url);
  try {
    await fillLogs(client);
    const latencies = await queryRace(system, client);
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
    const row = (name: string, values: number[]): Cell[] => [
      name,
      values.length.toLocaleString('en-US'),
      percentile(values, 50),
      percentile(values, 95),
      mean(values),
    ];
    printTable(
      `todo-history query: GET /api/logs/group/:id (limit 100) on ${queryRows.toLocaleString('en-US')} rows, ms`,
      ['path', 'requests', 'p50', 'p95', 'mean'],
      [
        row('API (Fastify inject, pool, zod, JSON)', latencies.api),
        row('same SQL on a pg client', latencies.direct),
        [
          'API ÷ direct',
          '',
          times(percentile(latencies.api, 50), percentile(latencies.direct, 50)),
          times(percentile(latencies.api, 95), percentile(latencies.direct, 95)),
          times(mean(latencies.api), mean(latencies.direct)),
        ],
      ],
    );
  } finally {
    await client.end();
    await system.close();
  }
}

await main();
