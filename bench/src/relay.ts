import { readdirSync, readFileSync } from 'node:fs';
import { Kafka, logLevel, type Message, Partitioners } from 'kafkajs';
import type pg from 'pg';
import { beginningOfLog, type LogMessage, Postbox, PostboxMetrics, partitionOf, readAfter } from 'postbox';
import { createKafkaRelay } from 'postbox/kafka';
import { type MockCluster, startMockCluster } from '../../packages/postbox/test/support/kafka-mock.js';
import { machineCpu, machineCpuSince, processCpuMs, ServerCpu } from './support/cpu.js';
import { type BenchDatabase, connect, createDatabase } from './support/database.js';
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
/** The partitioned round: the relay's group has this many partitions, each sent by a producer of its own. */
const relayPartitions = Number(process.env.BENCH_RELAY_PARTITIONS ?? 4);
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
async function recordsOfLog(postbox: Postbox): Promise<Message[]> {
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
  return records;
}

const inBatches = (records: readonly Message[]) => chunks(records.length, batchSize, (i) => records[i] as Message);

/**
 * The records split as a relay of `partitions` partitions splits them: by the Postbox partition of
 * their key, each share in log order and in batches of 1,000.
 */
function sharesOf(records: readonly Message[], partitions: number): Message[][][] {
  const shares: Message[][] = Array.from({ length: partitions }, () => []);
  for (const record of records) {
    const id = String((record.headers as Record<string, string>)['message-id']);
    shares[partitionOf(record.key === undefined || record.key === null ? null : String(record.key), id, partitions)]?.push(record);
  }
  return shares.map(inBatches);
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

/**
 * The limit of a partitioned relay: one KafkaJS producer per share of the keys, all sending at once,
 * each its share in log order, 1,000 records a call, with the relay's producer settings
 * (relay-producer.ts: one request in flight, the default partitioner, no idempotence on the mock,
 * 3 retries from 100 ms to 5 s, acks -1, a 25 s timeout).
 */
async function produceDirectParallel(kafka: Kafka, target: string, shares: Message[][][]): Promise<number> {
  const producers = shares.map(() =>
    kafka.producer({
      idempotent: false,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 5_000 },
    }),
  );
  const { ms } = await timed(() =>
    Promise.all(
      producers.map(async (producer, i) => {
        await producer.connect();
        for (const messages of shares[i] ?? []) {
          await producer.sendBatch({ topicMessages: [{ topic: target, messages }], acks: -1, timeout: 25_000 });
        }
      }),
    ),
  );
  await Promise.all(producers.map((producer) => producer.disconnect()));
  return ms;
}

/** The mock broker's process (a child of this one), to read its CPU from /proc. */
function brokerPid(): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [comm, rest] = [stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), stat.slice(stat.lastIndexOf(')') + 2)];
      if (comm === 'mock-cluster' && Number(rest.split(' ')[1]) === process.pid) return Number(entry);
    } catch {}
  }
  return undefined;
}

interface RoundCpu {
  /** CPU ms of this Node process, the database's server processes and the broker; the machine's busy ms. */
  node: number;
  server: number | undefined;
  broker: number | undefined;
  machine: number | undefined;
}

/** Runs fn while measuring the CPU of this process, the database's backends, the broker and the machine. */
async function withCpu<T>(database: BenchDatabase, sampler: pg.Client, broker: number | undefined, fn: () => Promise<T>) {
  const server = await ServerCpu.start(sampler, database.name);
  const node = process.cpuUsage();
  const brokerAtStart = broker === undefined ? undefined : processCpuMs(broker);
  const machineAtStart = machineCpu();
  const value = await fn();
  const { user, system } = process.cpuUsage(node);
  const brokerAtEnd = broker === undefined ? undefined : processCpuMs(broker);
  const cpu: RoundCpu = {
    node: (user + system) / 1000,
    server: await server.stop(),
    broker: brokerAtStart === undefined || brokerAtEnd === undefined ? undefined : brokerAtEnd - brokerAtStart,
    machine: machineCpuSince(machineAtStart)?.busyMs,
  };
  return { value, cpu };
}

interface RelayRun {
  ms: number;
  /** Time inside the batch handler: building the records and waiting for Kafka's acknowledgement. */
  sendMs: number;
}

/** The Postbox relay from start() until Kafka acknowledged every message, then stopped (its last checkpoint committed). */
async function relay(postbox: Postbox, cluster: MockCluster, group: string, target: string, partitions = 1): Promise<RelayRun> {
  const metrics = new PostboxMetrics();
  const relayed = createKafkaRelay(postbox, {
    kafka: { brokers: cluster.brokers },
    topics: [topic],
    topicMap: () => target,
    group,
    batchSize,
    partitions,
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

/** Reading alone: a no-op consumer group over the same log messages, from start() until every message is checkpointed. */
async function readAlone(postbox: Postbox, group: string, partitions: number): Promise<number> {
  const consumer = postbox.consumer({ group, topics: [topic], batchSize, partitions, handleBatch: async () => {} });
  const { ms } = await timed(async () => {
    await consumer.start();
    while (consumer.handled < total) await sleep(1);
  });
  await consumer.stop();
  return ms;
}

async function main(): Promise<void> {
  const [database, cluster] = await Promise.all([createDatabase('relay'), startMockCluster()]);
  const postbox = await Postbox.create({ databaseUrl: database.url, migrate: 'auto' });
  const client = await connect(database.url);
  const sampler = await connect(database.url);
  const kafka = new Kafka({ brokers: cluster.brokers, logLevel: logLevel.NOTHING });
  try {
    const topics = ['direct-1', 'direct-2', 'relay-1', 'relay-2', 'direct-p-1', 'direct-p-2', 'relay-p-1', 'relay-p-2'];
    for (const name of [...topics, 'polling-5s', 'polling-batch']) await cluster.createTopic(name, 4);
    await load(client, postbox);
    await client.query('analyze postbox.messages');
    const records = await recordsOfLog(postbox);
    const batches = inBatches(records);
    const shares = sharesOf(records, relayPartitions);
    const broker = brokerPid();

    // Two rounds in opposite order, so drift on a noisy machine falls on both.
    const measured = <T>(fn: () => Promise<T>) => withCpu(database, sampler, broker, fn);
    const direct1Run = await measured(() => produceDirect(kafka, 'direct-1', batches));
    const relay1Run = await measured(() => relay(postbox, cluster, 'bench-relay-1', 'relay-1'));
    const relay2Run = await measured(() => relay(postbox, cluster, 'bench-relay-2', 'relay-2'));
    const direct2Run = await measured(() => produceDirect(kafka, 'direct-2', batches));
    const [direct1, relay1, relay2, direct2] = [direct1Run.value, relay1Run.value, relay2Run.value, direct2Run.value];

    // The partitioned relay against as many direct producers, each sending one partition's share, in the same ABBA order.
    const directP1 = await measured(() => produceDirectParallel(kafka, 'direct-p-1', shares));
    const relayP1 = await measured(() => relay(postbox, cluster, 'bench-relay-p-1', 'relay-p-1', relayPartitions));
    const relayP2 = await measured(() => relay(postbox, cluster, 'bench-relay-p-2', 'relay-p-2', relayPartitions));
    const directP2 = await measured(() => produceDirectParallel(kafka, 'direct-p-2', shares));
    // What reading the log costs without Kafka: the part of the relay's CPU the direct producers do not pay.
    const read1 = await measured(() => readAlone(postbox, 'bench-read-1', 1));
    const readP = await measured(() => readAlone(postbox, 'bench-read-p', relayPartitions));

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
    const directPMs = directP1.value + directP2.value;
    const relayPMs = relayP1.value.ms + relayP2.value.ms;
    const relayRate = perSecond(2 * total, relayMs);
    const pollingSlowRate = perSecond(pollingSlow.value, pollingSlow.ms);
    const pollingBatchRate = perSecond(pollingBatchCount, pollingBatch.ms);
    // Against the direct producers of the same count: one for the rows of one producer, P for the partitioned rows.
    const row = (name: string, count: number, ms: number, baselineMs = directMs): Cell[] => [
      name,
      count.toLocaleString('en-US'),
      (ms / 1000).toFixed(2),
      perSecond(count, ms),
      ratio(perSecond(count, ms), perSecond(2 * total, baselineMs)),
    ];
    printTable(
      `Relay to Kafka (librdkafka mock cluster, 4 partitions): ${total.toLocaleString('en-US')} messages per run, acks -1, one request in flight`,
      ['sender', 'messages', 'seconds', 'msg/s', 'of direct KafkaJS, same producers'],
      [
        row('KafkaJS sendBatch direct, round 1', total, direct1),
        row('Postbox relay, batch 1,000, round 1', total, relay1.ms),
        row('Postbox relay, batch 1,000, round 2', total, relay2.ms),
        row('KafkaJS sendBatch direct, round 2', total, direct2),
        row(`${relayPartitions} KafkaJS producers in parallel, one per share of the keys, round 1`, total, directP1.value, directPMs),
        row(`Postbox relay, ${relayPartitions} partitions, batch 1,000, round 1`, total, relayP1.value.ms, directPMs),
        row(`Postbox relay, ${relayPartitions} partitions, batch 1,000, round 2`, total, relayP2.value.ms, directPMs),
        row(`${relayPartitions} KafkaJS producers in parallel, one per share of the keys, round 2`, total, directP2.value, directPMs),
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
        [
          `Postbox relay, ${relayPartitions} partitions / ${relayPartitions} direct KafkaJS producers (both rounds)`,
          ratio(directPMs, relayPMs),
          '≥ 90%',
        ],
        [`Postbox relay, ${relayPartitions} partitions ÷ 1 partition`, times(relayMs, relayPMs, 2), '—'],
        [`${relayPartitions} direct producers ÷ 1`, times(directMs, directPMs, 2), '—'],
        ['Postbox relay ÷ polling outbox every 5 s, batch 10', times(relayRate, pollingSlowRate), '≥ 20×'],
        ['Postbox relay ÷ polling outbox at batch 1,000', times(relayRate, pollingBatchRate), '—'],
      ],
    );
    const cpuRows = (
      [
        ['direct producer, round 1', direct1Run.cpu, direct1],
        ['relay, 1 partition, round 1', relay1Run.cpu, relay1.ms],
        ['relay, 1 partition, round 2', relay2Run.cpu, relay2.ms],
        ['direct producer, round 2', direct2Run.cpu, direct2],
        [`${relayPartitions} direct producers, round 1`, directP1.cpu, directP1.value],
        [`relay, ${relayPartitions} partitions, round 1`, relayP1.cpu, relayP1.value.ms],
        [`relay, ${relayPartitions} partitions, round 2`, relayP2.cpu, relayP2.value.ms],
        [`${relayPartitions} direct producers, round 2`, directP2.cpu, directP2.value],
        ['reading alone: no-op group, 1 partition, no Kafka', read1.cpu, read1.value],
        [`reading alone: no-op group, ${relayPartitions} partitions, no Kafka`, readP.cpu, readP.value],
      ] as const
    ).map(([name, cpu, ms]): Cell[] => {
      const perMessage = (value: number | undefined) => (value === undefined ? 'n/a' : (value * 1000) / total);
      const cores = (value: number | undefined) => (value === undefined ? 'n/a' : (value / ms).toFixed(2));
      return [name, perMessage(cpu.node), perMessage(cpu.server), perMessage(cpu.broker), cores(cpu.node), cores(cpu.machine)];
    });
    printTable(
      "Relay: CPU of each round (this Node process, the database's server processes, the mock broker; cores = CPU ms ÷ wall ms)",
      ['sender', 'Node µs/msg', 'server µs/msg', 'broker µs/msg', 'Node, cores', 'machine busy, cores'],
      cpuRows,
    );
  } finally {
    await sampler.end();
    await client.end();
    await postbox.close();
    await Promise.all([database.drop(), cluster.stop()]);
  }
}

await main();
