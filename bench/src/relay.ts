import { Kafka, logLevel, type Message, Partitioners } from 'kafkajs';
import type pg from 'pg';
import { beginningOfLog, type LogMessage, Postbox, PostboxMetrics, readAfter } from 'postbox';
import { createKafkaRelay } from 'postbox/kafka';
import { type MockCluster, startMockCluster } from '../../packages/postbox/test/support/kafka-mock.js';
import { connect, createDatabase } from './support/database.js';
import { chunks, orderMessage, topic } from './support/messages.js';
import { createPollingOutbox, drainPollingOutbox, loadPollingOutbox, runOutboxTicker } from './support/polling-outbox.js';
import { type Cell, printTable, ratio, times } from './support/table.js';
import { perSecond, sleep, timed } from './support/timing.js';

const total = Number(process.env.BENCH_RELAY_COUNT ?? 100_000);
/** Rows the polling outbox publishes at the relay's batch size, with no interval. */
const pollingBatchCount = Number(process.env.BENCH_RELAY_POLLING_COUNT ?? 20_000);
/** Polls of the polling outbox at its defaults, one every 5 s. */
const pollingSlowPolls = Number(process.env.BENCH_RELAY_POLLING_POLLS ?? 6);
const batchSize = 1_000;
/** The polling outbox's defaults: a poll every 5 s (OUTBOX_PROCESS_INTERVAL=5s), 10 rows a poll (OUTBOX_BATCH_SIZE=10). */
const pollingIntervalMs = 5_000;
const pollingBatchSize = 10;

async function load(client: pg.Client, postbox: Postbox): Promise<void> {
  for (const batch of chunks(total, batchSize, orderMessage)) {
    await client.query('begin');
    await postbox.enqueue(client, batch);
    await client.query('commit');
  }
}

/** The log's messages as the relay sends them: key, payload JSON, and the id, type and schema version as headers. */
async function recordsOfLog(postbox: Postbox): Promise<Message[][]> {
  const messages: LogMessage[] = [];
  while (messages.length < total) {
    const last = messages.at(-1);
    const after = last ? { transactionId: last.transactionId, globalPosition: last.globalPosition } : beginningOfLog;
    messages.push(...(await readAfter(postbox.db, { topics: [topic], limit: 10_000, after })));
  }
  const records = messages.map((m) => ({
    key: m.key,
    value: JSON.stringify(m.payload),
    headers: { 'message-id': m.id, 'message-type': m.type, 'schema-version': String(m.headers.schemaVersion) },
  }));
  return chunks(records.length, batchSize, (i) => records[i] as Message);
}

/** The limit: one KafkaJS producer sending the same records in batches of 1,000, acks -1, one request in flight. */
async function produceDirect(kafka: Kafka, target: string, batches: Message[][]): Promise<number> {
  const producer = kafka.producer({ maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  const { ms } = await timed(async () => {
    await producer.connect();
    for (const messages of batches) await producer.sendBatch({ topicMessages: [{ topic: target, messages }], acks: -1 });
  });
  await producer.disconnect();
  return ms;
}

interface RelayRun {
  ms: number;
  /** Time inside the batch handler: building the records and waiting for Kafka's acknowledgement. */
  sendMs: number;
}

/** The Postbox relay from start() until Kafka acknowledged every message, then stopped (its last checkpoint committed). */
async function relay(postbox: Postbox, cluster: MockCluster, group: string, target: string): Promise<RelayRun> {
  const metrics = new PostboxMetrics();
  const relayed = createKafkaRelay(postbox, {
    kafka: { brokers: cluster.brokers },
    topics: [topic],
    topicMap: () => target,
    group,
    batchSize,
    idempotent: false,
    metrics,
  });
  const published = async () => (await metrics.outboxEventsProcessed.get()).values.find((v) => v.labels.status === 'published')?.value ?? 0;
  const { ms } = await timed(async () => {
    await relayed.start();
    while ((await published()) < total) await sleep(1);
    await relayed.stop();
  });
  const [status] = await postbox.groupStatus(group);
  if (status?.lagMessages !== 0) throw new Error(`relay ${group} stopped with ${status?.lagMessages} messages pending`);
  const durations = await metrics.outboxProcessingDuration.get();
  const sendSeconds = durations.values.find((v) => v.metricName === 'outbox_processing_duration_seconds_sum')?.value ?? Number.NaN;
  return { ms, sendMs: sendSeconds * 1000 };
}

async function main(): Promise<void> {
  const [database, cluster] = await Promise.all([createDatabase('relay'), startMockCluster()]);
  const postbox = await Postbox.create({ databaseUrl: database.url, migrate: 'auto' });
  const client = await connect(database.url);
  const kafka = new Kafka({ brokers: cluster.brokers, logLevel: logLevel.NOTHING });
  try {
    for (const name of ['direct-1', 'direct-2', 'relay-1', 'relay-2', 'polling-5s', 'polling-batch']) await cluster.createTopic(name, 4);
    await load(client, postbox);
    await client.query('analyze postbox.messages');
    const batches = await recordsOfLog(postbox);

    // Two rounds in opposite order, so drift on a noisy machine falls on both.
    const direct1 = await produceDirect(kafka, 'direct-1', batches);
    const relay1 = await relay(postbox, cluster, 'bench-relay-1', 'relay-1');
    const relay2 = await relay(postbox, cluster, 'bench-relay-2', 'relay-2');
    const direct2 = await produceDirect(kafka, 'direct-2', batches);

    await createPollingOutbox(client);
    const producer = kafka.producer({ maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await loadPollingOutbox(client, 'polling-batch', pollingBatchCount);
    await client.query('analyze polling_outbox');
    const pollingBatch = await timed(() => drainPollingOutbox(client, producer, batchSize, pollingBatchCount));
    await loadPollingOutbox(client, 'polling-5s', pollingBatchSize * pollingSlowPolls * 2);
    const pollingSlow = await timed(() => runOutboxTicker(client, producer, pollingBatchSize, pollingIntervalMs, pollingSlowPolls));
    await producer.disconnect();

    const directMs = direct1 + direct2;
    const relayMs = relay1.ms + relay2.ms;
    const relayRate = perSecond(2 * total, relayMs);
    const pollingSlowRate = perSecond(pollingSlow.value, pollingSlow.ms);
    const pollingBatchRate = perSecond(pollingBatchCount, pollingBatch.ms);
    const row = (name: string, count: number, ms: number): Cell[] => [
      name,
      count.toLocaleString('en-US'),
      (ms / 1000).toFixed(2),
      perSecond(count, ms),
      ratio(perSecond(count, ms), perSecond(2 * total, directMs)),
    ];
    printTable(
      `Relay to Kafka (librdkafka mock cluster, 4 partitions): ${total.toLocaleString('en-US')} messages per run, acks -1, one request in flight`,
      ['sender', 'messages', 'seconds', 'msg/s', 'of direct KafkaJS'],
      [
        row('KafkaJS sendBatch direct, round 1', total, direct1),
        row('Postbox relay, batch 1,000, round 1', total, relay1.ms),
        row('Postbox relay, batch 1,000, round 2', total, relay2.ms),
        row('KafkaJS sendBatch direct, round 2', total, direct2),
        row('polling outbox, batch 1,000, no interval', pollingBatchCount, pollingBatch.ms),
        row(`polling outbox, every 5 s, batch 10, ${pollingSlowPolls} polls`, pollingSlow.value, pollingSlow.ms),
      ],
    );
    const sendShare = ratio(relay1.sendMs + relay2.sendMs, relayMs);
    console.log(
      `Postbox relay: ${sendShare} of its time inside the batch handler (records built, sent, acknowledged); the rest reads the log and commits checkpoints.`,
    );
    printTable(
      'Relay: ratios',
      ['comparison', 'ratio', 'target'],
      [
        ['Postbox relay / direct KafkaJS (both rounds)', ratio(directMs, relayMs), '≥ 70%'],
        ['Postbox relay ÷ polling outbox every 5 s, batch 10', times(relayRate, pollingSlowRate), '≥ 20×'],
        ['Postbox relay ÷ polling outbox at batch 1,000', times(relayRate, pollingBatchRate), '—'],
      ],
    );
  } finally {
    await client.end();
    await postbox.close();
    await Promise.all([database.drop(), cluster.stop()]);
  }
}

await main();
