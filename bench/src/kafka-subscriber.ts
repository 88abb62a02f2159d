import { randomUUID } from 'node:crypto';
import type { Kafka, Message } from 'kafkajs';
import pg from 'pg';
import { Postbox, type RoutedMessage, Router } from 'postbox';
import { createKafka, kafkaSource } from 'postbox/kafka';
import { type MockCluster, startMockCluster } from '../../packages/postbox/test/support/kafka-mock.js';
import { type BenchDatabase, createDatabase } from './support/database.js';
import { chunks, type OrderPayload, payload, topic } from './support/messages.js';
import { type Cell, printTable, ratio, times } from './support/table.js';
import { perSecond, sleep } from './support/timing.js';

const total = Number(process.env.BENCH_KAFKA_COUNT ?? 100_000);
/** The one-row-per-insert consumer stops after this long if it has not finished; its rate is over what it did. */
const baselineSeconds = Number(process.env.BENCH_KAFKA_BASELINE_SECONDS ?? 120);
const partitions = 4;
const produceBatch = 1_000;
const pollMs = 20;

interface Run {
  /** Messages in the sink when the run ended. */
  handled: number;
  /** From the first message reaching the handler to the last row committed. */
  ms: number;
  /** From start() to the first message reaching the handler: joining the group (the mock delays the first join by 3 s). */
  joinMs: number;
}

const sinkTable = (name: string) => `
  create table ${name} (
    message_id text primary key,
    order_id uuid not null,
    amount int not null,
    kafka_partition int not null,
    kafka_offset bigint not null,
    received_at timestamptz not null default now()
  )`;

/** The same 100k JSON records, each with a message-id header, keyed by order, in four partitions. */
async function load(kafka: Kafka, cluster: MockCluster): Promise<void> {
  await cluster.createTopic(topic, partitions);
  const producer = kafka.producer();
  await producer.connect();
  for (const batch of chunks(total, produceBatch, (i): Message => {
    const data = payload(i);
    return { key: data.orderId, value: JSON.stringify(data), headers: { 'message-id': randomUUID() } };
  })) {
    await producer.send({ topic, acks: -1, messages: batch });
  }
  await producer.disconnect();
}

/** Waits until the sink holds `total` rows or the time is up; returns the rows and when the count was seen. */
async function waitForRows(pool: pg.Pool, table: string, deadline: number): Promise<{ rows: number; at: number }> {
  for (;;) {
    const { rows } = await pool.query<{ n: number }>(`select count(*)::int as n from ${table}`);
    const count = rows[0]?.n ?? 0;
    const at = performance.now();
    if (count >= total || at > deadline) return { rows: count, at };
    await sleep(pollMs);
  }
}

/** KafkaJS eachBatch with nothing to do but count: how fast messages come out of the mock broker. */
async function readLimit(kafka: Kafka): Promise<Run> {
  const consumer = kafka.consumer({ groupId: 'bench-read-limit', maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let read = 0;
  let firstAt = 0;
  const started = performance.now();
  await consumer.run({
    eachBatch: async ({ batch }) => {
      if (firstAt === 0) firstAt = performance.now();
      for (const message of batch.messages) JSON.parse(message.value?.toString() ?? 'null');
      read += batch.messages.length;
    },
  });
  while (read < total) await sleep(1);
  const ms = performance.now() - firstAt;
  await consumer.disconnect();
  return { handled: read, ms, joinMs: firstAt - started };
}

/**
 * The Router with kafkaSource at its defaults, transactional: each delivery (up to 1,000 messages,
 * from up to four partitions) is one transaction holding one
 * `insert … select from unnest(…) on conflict (message_id) do nothing`, and its Kafka offsets are
 * committed after that transaction.
 */
async function routerSink(database: BenchDatabase, kafka: Kafka, pool: pg.Pool, partitionsConsumedConcurrently?: number): Promise<Run> {
  const table = `sink_router_${partitionsConsumedConcurrently ?? 'default'}`;
  await pool.query(sinkTable(table));
  const postbox = await Postbox.create({ databaseUrl: database.url, migrate: 'auto' });
  const router = new Router(postbox);
  let firstAt = 0;
  router.addHandler<OrderPayload>({
    name: `bench-${table}`,
    topics: [topic],
    transactional: true,
    source: kafkaSource({ kafka, startFrom: 'earliest', maxWaitTimeMs: 100, partitionsConsumedConcurrently }),
    handleBatch: async (messages: RoutedMessage<OrderPayload>[], context) => {
      if (firstAt === 0) firstAt = performance.now();
      await context.tx?.query(
        `insert into ${table} (message_id, order_id, amount, kafka_partition, kafka_offset)
         select * from unnest($1::text[], $2::uuid[], $3::int[], $4::int[], $5::bigint[])
         on conflict (message_id) do nothing`,
        [
          messages.map((m) => m.id),
          messages.map((m) => m.payload.orderId),
          messages.map((m) => m.payload.amount),
          messages.map((m) => (m.source.kind === 'kafka' ? m.source.partition : -1)),
          messages.map((m) => (m.source.kind === 'kafka' ? m.source.offset : '-1')),
        ],
      );
    },
  });
  const started = performance.now();
  await router.start();
  const done = await waitForRows(pool, table, started + 120_000);
  await router.stop(10_000);
  await postbox.close();
  return { handled: done.rows, ms: done.at - firstAt, joinMs: firstAt - started };
}

/**
 * A consumer that inserts one row per message: KafkaJS eachMessage, one INSERT per message on a
 * pool (each its own autocommit transaction), offsets auto-committed by KafkaJS.
 */
async function oneRowSink(kafka: Kafka, pool: pg.Pool): Promise<Run> {
  await pool.query(sinkTable('sink_one_row'));
  const consumer = kafka.consumer({ groupId: 'bench-one-row', maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let firstAt = 0;
  const started = performance.now();
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      if (firstAt === 0) firstAt = performance.now();
      const data = JSON.parse(message.value?.toString() ?? 'null') as OrderPayload;
      await pool.query(
        'insert into sink_one_row (message_id, order_id, amount, kafka_partition, kafka_offset) values ($1, $2, $3, $4, $5)',
        [String(message.headers?.['message-id']), data.orderId, data.amount, partition, message.offset],
      );
    },
  });
  while (firstAt === 0) await sleep(pollMs);
  const done = await waitForRows(pool, 'sink_one_row', firstAt + baselineSeconds * 1_000);
  await consumer.disconnect();
  return { handled: done.rows, ms: done.at - firstAt, joinMs: firstAt - started };
}

async function main(): Promise<void> {
  const [database, cluster] = await Promise.all([createDatabase('kafka_subscriber'), startMockCluster()]);
  const kafka = createKafka({ brokers: cluster.brokers, clientId: 'bench' });
  const pool = new pg.Pool({ connectionString: database.url, max: 4 });
  try {
    await load(kafka, cluster);
    const limit = await readLimit(kafka);
    const router = await routerSink(database, kafka, pool);
    const onePartition = await routerSink(database, kafka, pool, 1);
    const oneRow = await oneRowSink(kafka, pool);

    const rate = (run: Run) => perSecond(run.handled, run.ms);
    const row = (name: string, run: Run): Cell[] => [
      name,
      run.handled.toLocaleString('en-US'),
      (run.ms / 1000).toFixed(2),
      rate(run),
      ratio(rate(run), rate(limit)),
      (run.joinMs / 1000).toFixed(1),
    ];
    printTable(
      `Kafka subscriber: ${total.toLocaleString('en-US')} JSON messages in ${partitions} partitions of the mock cluster, into PostgreSQL`,
      ['consumer', 'messages', 'seconds', 'msg/s', 'of read limit', 'join s (untimed)'],
      [
        row('KafkaJS eachBatch, no sink (read limit)', limit),
        row('Router + kafkaSource, batched insert, transactional', router),
        row('the same, one partition per delivery (partitionsConsumedConcurrently 1)', onePartition),
        row('one-row inserts: eachMessage, one INSERT per message', oneRow),
      ],
    );
    printTable(
      'Kafka subscriber: ratios',
      ['comparison', 'ratio', 'target'],
      [
        ['Router + kafkaSource / one-row inserts', times(rate(router), rate(oneRow)), '≥ 10×'],
        ['partitions delivered together / one partition per delivery', times(rate(router), rate(onePartition)), 'none'],
      ],
    );
    if (router.handled < total) throw new Error(`the router handled ${router.handled} of ${total} messages`);
  } finally {
    await pool.end();
    await Promise.all([database.drop(), cluster.stop()]);
  }
}

await main();
