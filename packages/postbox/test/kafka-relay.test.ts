import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Kafka } from 'kafkajs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors/postbox-error.js';
import { PostboxMetrics } from '../src/observability/metrics.js';
import type { OutgoingMessage } from '../src/outbox/outgoing-message.js';
import { Postbox } from '../src/postbox.js';
import { createKafka } from '../src/transports/kafka/kafka-client.js';
import { kafkaHeaderNames } from '../src/transports/kafka/kafka-headers.js';
import { createKafkaRelay, type KafkaRelay, type KafkaRelayOptions, kafkaRelayFromEnv } from '../src/transports/kafka/relay.js';
import { loadKafkaRelayConfig } from '../src/transports/kafka/relay-config.js';
import { exited, spawnTs, waitForLine } from './support/child.js';
import { type MockCluster, startMockCluster } from './support/kafka-mock.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { delay, waitFor } from './support/wait.js';

interface Record {
  partition: number;
  offset: string;
  key: string | null;
  value: string;
  headers: { [name: string]: string };
}

/** How many records a topic holds: the sum of its partitions' high watermarks. */
async function recordCount(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, partition) => sum + Number(partition.high), 0);
  } finally {
    await admin.disconnect();
  }
}

interface TopicReader {
  /** Every record of a topic, once as many have arrived as the topic holds. */
  records(topic: string, timeoutMs?: number): Promise<Record[]>;
  stop(): Promise<void>;
}

/** One KafkaJS consumer reading the topics from the beginning for the whole file (joining a group costs seconds). */
async function startReader(kafka: Kafka, topics: string[]): Promise<TopicReader> {
  const received = new Map<string, Record[]>(topics.map((topic) => [topic, []]));
  const consumer = kafka.consumer({ groupId: `reader-${randomUUID()}`, maxWaitTimeInMs: 100, maxBytes: 50 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const list = received.get(batch.topic) as Record[];
      for (const message of batch.messages) {
        const headers: { [name: string]: string } = {};
        for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
        list.push({
          partition: batch.partition,
          offset: message.offset,
          key: message.key === null ? null : message.key.toString(),
          value: message.value?.toString() ?? '',
          headers,
        });
      }
    },
  });
  return {
    async records(topic, timeoutMs = 20_000) {
      const total = await recordCount(kafka, topic);
      const list = received.get(topic) as Record[];
      await waitFor(() => list.length >= total, timeoutMs, `${total} records of ${topic} (read ${list.length})`);
      return list;
    },
    stop: () => consumer.disconnect(),
  };
}

async function lagOf(postbox: Postbox, group: string): Promise<number> {
  const [status] = await postbox.groupStatus(group);
  return status?.lagMessages ?? Number.NaN;
}

describe('Kafka relay', () => {
  let database: TestDatabase;
  let postbox: Postbox;
  let cluster: MockCluster;
  let kafka: Kafka;
  let reader: TopicReader;
  const relays: KafkaRelay[] = [];

  function relay(options: Omit<KafkaRelayOptions, 'kafka'> & Partial<Pick<KafkaRelayOptions, 'kafka'>>): KafkaRelay {
    const created = createKafkaRelay(postbox, {
      kafka: { brokers: cluster.brokers },
      idempotent: false,
      pollIntervalMs: 50,
      ...options,
    });
    relays.push(created);
    return created;
  }

  beforeAll(async () => {
    [database, cluster] = await Promise.all([createTestDatabase(), startMockCluster()]);
    postbox = await Postbox.create({ databaseUrl: database.url });
    kafka = createKafka({ brokers: cluster.brokers });
    const topics = ['orders', 'payments', 'crash', 'shipments', 'parcels'];
    for (const topic of topics) await cluster.createTopic(topic, 4);
    reader = await startReader(kafka, topics);
  });
  afterAll(async () => {
    await Promise.all([reader?.stop(), ...relays.map((r) => r.stop(2_000))]);
    await postbox?.close(2_000);
    await Promise.all([database?.drop(), cluster?.stop()]);
  });

  it('sends each message with its key, payload JSON and headers, keeping per-key order', async () => {
    const keys = Array.from({ length: 10 }, (_, k) => `customer-${k}`);
    const perKey = 200;
    const sent: OutgoingMessage[] = [];
    for (let seq = 0; seq < perKey; seq++) {
      for (const key of keys) {
        sent.push({
          topic: 'orders',
          type: 'order.placed',
          key,
          payload: { key, seq, note: 'ünïcode ✓' },
          traceId: `trace-${key}-${seq}`,
          correlationId: `corr-${seq}`,
          userId: 'user-7',
          headers: { tenant: 'acme' },
        });
      }
    }
    const ids: string[] = [];
    for (let start = 0; start < sent.length; start += 250) ids.push(...(await postbox.publish(sent.slice(start, start + 250))));
    const [unkeyedId] = await postbox.publish({ topic: 'orders', type: 'order.note', payload: { unkeyed: true } });

    const metrics = new PostboxMetrics();
    const orders = relay({ group: 'relay-orders', topics: ['orders'], batchSize: 300, metrics });
    await orders.start();
    await waitFor(async () => (await lagOf(postbox, 'relay-orders')) === 0, 20_000, 'the relay to catch up');

    const records = await reader.records('orders');
    expect(records).toHaveLength(sent.length + 1);
    const byId = new Map(records.map((r) => [r.headers[kafkaHeaderNames.id], r]));
    const first = byId.get(ids[0] as string);
    expect(first).toMatchObject({ key: 'customer-0' });
    expect(JSON.parse(first?.value ?? 'null')).toEqual({ key: 'customer-0', seq: 0, note: 'ünïcode ✓' });
    expect(first?.headers).toMatchObject({
      [kafkaHeaderNames.id]: ids[0],
      [kafkaHeaderNames.type]: 'order.placed',
      [kafkaHeaderNames.traceId]: 'trace-customer-0-0',
      [kafkaHeaderNames.correlationId]: 'corr-0',
      [kafkaHeaderNames.userId]: 'user-7',
      [kafkaHeaderNames.schemaVersion]: '1',
      tenant: 'acme',
    });
    expect(byId.get(unkeyedId as string)?.key).toBeNull();

    for (const key of keys) {
      const ofKey = records.filter((r) => r.key === key).sort((a, b) => Number(a.offset) - Number(b.offset));
      expect(ofKey).toHaveLength(perKey);
      expect(new Set(ofKey.map((r) => r.partition)).size).toBe(1);
      expect(ofKey.map((r) => JSON.parse(r.value).seq)).toEqual(Array.from({ length: perKey }, (_, i) => i));
    }
    expect(new Set(records.filter((r) => r.key !== null).map((r) => r.partition)).size).toBeGreaterThan(1);

    const stats = await orders.stats();
    expect(stats).toMatchObject({ group: 'relay-orders', state: 'active', pending: 0, published: sent.length + 1, failed: 0 });
    expect(stats.lastPublishedAt).toBeInstanceOf(Date);
    expect(await orders.health()).toEqual({ name: 'kafka-relay:relay-orders', status: 'healthy' });
    const published = await metrics.outboxEventsProcessed.get();
    expect(published.values).toEqual([{ labels: { topic: 'orders', status: 'published' }, value: sent.length + 1 }]);
    const durations = await metrics.outboxProcessingDuration.get();
    expect(durations.values.find((v) => v.metricName === 'outbox_processing_duration_seconds_count')?.value).toBeGreaterThanOrEqual(7);
    await orders.stop(5_000);
  });

  it('sends the partitions of a partitioned relay in parallel, each key in order', async () => {
    const keys = Array.from({ length: 24 }, (_, k) => `parcel-${k}`);
    const perKey = 50;
    for (let seq = 0; seq < perKey; seq++) {
      await postbox.publish(keys.map((key) => ({ topic: 'parcels', type: 'parcel.moved', key, payload: { key, seq } })));
    }
    const parcels = relay({ group: 'relay-parcels', topics: ['parcels'], batchSize: 100, partitions: 4 });
    await parcels.start();
    await waitFor(async () => (await lagOf(postbox, 'relay-parcels')) === 0, 20_000, 'the partitioned relay to catch up');
    const [status] = await postbox.groupStatus('relay-parcels');
    expect(status?.partitions.map((p) => p.owner !== null)).toEqual([true, true, true, true]);
    const records = await reader.records('parcels');
    expect(records).toHaveLength(keys.length * perKey);
    for (const key of keys) {
      const ofKey = records.filter((r) => r.key === key).sort((a, b) => Number(a.offset) - Number(b.offset));
      expect(ofKey.map((r) => JSON.parse(r.value).seq)).toEqual(Array.from({ length: perKey }, (_, i) => i));
    }
    expect((await parcels.stats()).published).toBe(keys.length * perKey);
    await parcels.stop(5_000);
  });

  it('commits the checkpoint only after the brokers acknowledged, and catches up by itself after an outage', async () => {
    const metrics = new PostboxMetrics();
    const payments = relay({
      group: 'relay-payments',
      topics: ['payments'],
      batchSize: 100,
      retryDelayMs: 100,
      maxRetryDelayMs: 500,
      sendRetries: 1,
      sendRetryDelayMs: 50,
      sendRetryMaxDelayMs: 200,
      sendTimeoutMs: 3_000,
      metrics,
    });
    await payments.start();
    await postbox.publish({ topic: 'payments', type: 'warm-up', key: 'w', payload: {} });
    await waitFor(async () => (await lagOf(postbox, 'relay-payments')) === 0, 10_000, 'the warm-up message');
    const [before] = await postbox.groupStatus('relay-payments');

    await cluster.down();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(
        ...(await postbox.publish(
          Array.from({ length: 100 }, (_, k) => ({ topic: 'payments', type: 'paid', key: `k${k % 7}`, payload: { i, k } })),
        )),
      );
    }
    await delay(3_000);
    const [during] = await postbox.groupStatus('relay-payments');
    expect(during?.partitions[0]?.checkpoint).toEqual(before?.partitions[0]?.checkpoint);
    expect(during?.lagMessages).toBe(500);
    const stats = await payments.stats();
    expect(stats.failed).toBeGreaterThan(0);
    expect(stats.pending).toBe(500);
    expect(stats.lastError).toMatch(/Kafka send of \d+ messages failed/);
    const health = await payments.health();
    expect(health.status).toBe('degraded');
    expect(health.detail).toMatch(/^last send failed/);
    expect((await metrics.outboxErrors.get()).values[0]?.value).toBeGreaterThan(0);

    await cluster.up();
    await waitFor(async () => (await lagOf(postbox, 'relay-payments')) === 0, 30_000, 'the relay to catch up after the outage');
    const records = await reader.records('payments');
    const arrived = new Set(records.map((r) => r.headers[kafkaHeaderNames.id]));
    expect(ids.filter((id) => !arrived.has(id))).toEqual([]);
    expect((await payments.health()).status).toBe('healthy');
    await payments.stop(5_000);
  });
  it('names its group after the service, and refuses an idempotent producer without retries', () => {
    expect(relay({ topics: ['orders'] }).group).toBe('postbox-relay');
    expect(relay({ topics: ['orders'], serviceName: 'billing' }).group).toBe('billing-relay');
    expect(relay({ topics: ['orders'], serviceName: 'billing', group: 'own' }).group).toBe('own');
    expect(() => relay({ topics: ['orders'], idempotent: true, sendRetries: 0 })).toThrow(/sendRetries/);
  });

  it('keeps the SASL password out of logs, stats and the group error', async () => {
    const password = 'Sup3r-Secret-pw';
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(String(chunk));
        callback();
      },
    });
    const secured = relay({
      kafka: { brokers: cluster.brokers, sasl: { mechanism: 'plain', username: 'relay', password } },
      group: 'relay-secured',
      topics: ['secured'],
      sendRetries: 0,
      retryDelayMs: 100,
      logger: pino({ level: 'trace' }, sink),
    });
    await postbox.publish({ topic: 'secured', type: 't', payload: {} });
    await secured.start();
    await waitFor(async () => (await secured.stats()).failed > 0, 10_000, 'a failed send');
    await secured.stop(2_000);
    const stats = await secured.stats();
    const [status] = await postbox.groupStatus('relay-secured');
    expect(stats.lastError).toBeTruthy();
    expect(status?.lastError).toBeTruthy();
    expect(lines.length).toBeGreaterThan(0);
    for (const text of [stats.lastError, status?.lastError, ...lines]) expect(text).not.toContain(password);
  });

  it('loses nothing when the relay process is killed 20 times while messages are published', async () => {
    const batchSize = 500;
    const kills = 20;
    const env = { DATABASE_URL: database.url, KAFKA_BROKERS: cluster.bootstrap, OUTBOX_BATCH_SIZE: String(batchSize), TOPIC: 'crash' };
    const ids = new Set<string>();
    let publishing = true;
    const publisher = (async () => {
      for (let tx = 0; tx < 100; tx++) {
        const batch = Array.from({ length: 500 }, (_, i) => ({ topic: 'crash', type: 'tick', key: `k${i % 50}`, payload: { tx, i } }));
        for (const id of await postbox.publish(batch)) ids.add(id);
        await delay(200);
      }
      publishing = false;
    })();

    let killedWithBacklog = 0;
    for (let kill = 0; kill < kills; kill++) {
      const child = spawnTs('fixtures/relay-process.ts', env);
      try {
        await waitForLine(child, 'active');
        await delay(Math.random() * 600);
      } finally {
        child.kill('SIGKILL');
        await exited(child);
      }
      if ((await lagOf(postbox, 'relay-crash')) > 0) killedWithBacklog += 1;
    }
    await publisher;
    expect(publishing).toBe(false);

    const last = spawnTs('fixtures/relay-process.ts', env);
    try {
      await waitForLine(last, 'active');
      await waitFor(async () => (await lagOf(postbox, 'relay-crash')) === 0, 30_000, 'the last relay to catch up');
      last.kill('SIGTERM');
      expect(await exited(last)).toBe(0);
    } finally {
      last.kill('SIGKILL');
    }

    const records = await reader.records('crash', 30_000);
    const arrived = new Set(records.map((r) => r.headers[kafkaHeaderNames.id] as string));
    expect(ids.size).toBe(50_000);
    expect([...ids].filter((id) => !arrived.has(id))).toEqual([]);
    expect(arrived.size).toBe(ids.size);
    const duplicates = records.length - arrived.size;
    expect(duplicates).toBeLessThanOrEqual(kills * batchSize);
    expect(killedWithBacklog).toBeGreaterThan(0);
    console.log(`crash test: ${records.length} records, ${duplicates} duplicates, ${killedWithBacklog} of ${kills} kills with a backlog`);
  }, 120_000);

  it('stop() finishes the batch in hand and commits it; a new relay continues without duplicates', async () => {
    const total = 6_000;
    for (let start = 0; start < total; start += 1_000) {
      await postbox.publish(
        Array.from({ length: 1_000 }, (_, i) => ({ topic: 'shipments', type: 'shipped', key: `s${i % 13}`, payload: { n: start + i } })),
      );
    }
    let mapped = 0;
    let stopping: Promise<boolean> | undefined;
    const first: KafkaRelay = relay({
      group: 'relay-shipments',
      topics: ['shipments'],
      batchSize: 200,
      // Called for each message while a batch is being built: stop() lands in the middle of the sixth batch.
      topicMap: (topic) => {
        mapped += 1;
        if (mapped === 1_100) stopping = first.stop(10_000);
        return topic;
      },
    });
    await first.start();
    await waitFor(() => stopping !== undefined, 20_000, 'stop() to be called');
    expect(await stopping).toBe(true);
    expect(first.state).toBe('stopped');
    const stopped = await first.stats();
    expect(stopped.published).toBe(1_200);
    expect(stopped.failed).toBe(0);
    expect(stopped.pending).toBe(total - stopped.published);
    expect(await recordCount(kafka, 'shipments')).toBe(stopped.published);
    expect((await first.health()).status).toBe('unhealthy');

    const second = relay({ group: 'relay-shipments', topics: ['shipments'], batchSize: 200 });
    await second.start();
    await waitFor(async () => (await lagOf(postbox, 'relay-shipments')) === 0, 20_000, 'the second relay to finish');
    const records = await reader.records('shipments');
    expect(records).toHaveLength(total);
    expect(new Set(records.map((r) => JSON.parse(r.value).n)).size).toBe(total);
    expect((await second.stats()).published).toBe(total - stopped.published);
  });
});

describe('Kafka relay configuration from the environment', () => {
  const base = { KAFKA_BROKERS: 'kafka-1:9092, kafka-2:9092' };

  function configError(env: { [name: string]: string }): ConfigError {
    try {
      loadKafkaRelayConfig(env);
    } catch (error) {
      return error as ConfigError;
    }
    throw new Error('expected a ConfigError');
  }

  it('reads the seed names and their aliases', () => {
    const config = loadKafkaRelayConfig({
      ...base,
      OUTBOX_SERVICE_NAME: 'orders-service',
      OUTBOX_BATCH_SIZE: '100',
      OUTBOX_PROCESS_INTERVAL: '5s',
      OUTBOX_OPERATION_TIMEOUT: '25s',
      OUTBOX_MAX_RETRIES: '3',
      OUTBOX_RETRY_DELAY: '10s',
      KAFKA_SSL: 'true',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'relay',
      KAFKA_SASL_PASSWORD: 'p@ss:word',
    });
    expect(config).toEqual({
      enabled: true,
      serviceName: 'orders-service',
      batchSize: 100,
      pollIntervalMs: 5_000,
      retryDelayMs: 10_000,
      sendTimeoutMs: 25_000,
      sendRetries: 3,
      idempotent: true,
      kafka: {
        brokers: ['kafka-1:9092', 'kafka-2:9092'],
        clientId: 'orders-service',
        ssl: true,
        sasl: { mechanism: 'scram-sha-512', username: 'relay', password: 'p@ss:word' },
      },
    });
    expect(
      loadKafkaRelayConfig({
        ...base,
        OUTBOX_INTERVAL: '1s',
        OUTBOX_RETRY_ATTEMPTS: '0',
        KAFKA_CLIENT_ID: 'relay-1',
        KAFKA_IDEMPOTENT: 'false',
      }),
    ).toMatchObject({
      pollIntervalMs: 1_000,
      sendRetries: 0,
      idempotent: false,
      kafka: { clientId: 'relay-1', ssl: false, sasl: undefined },
    });
  });

  it.each([
    ['KAFKA_BROKERS', 'kafka-1'],
    ['KAFKA_BROKERS', 'kafka-1:9092;kafka-2:9092'],
    ['KAFKA_CLIENT_ID', 'has spaces'],
    ['KAFKA_SSL', 'maybe'],
    ['KAFKA_SASL_MECHANISM', 'gssapi'],
    ['OUTBOX_ENABLED', 'sometimes'],
    ['KAFKA_IDEMPOTENT', 'perhaps'],
    ['OUTBOX_BATCH_SIZE', '0'],
    ['OUTBOX_INTERVAL', '5'],
    ['OUTBOX_PROCESS_INTERVAL', 'soon'],
    ['OUTBOX_OPERATION_TIMEOUT', '-1s'],
    ['OUTBOX_RETRY_ATTEMPTS', 'three'],
    ['OUTBOX_MAX_RETRIES', '-1'],
    ['OUTBOX_RETRY_DELAY', '10'],
  ])('stops on an invalid %s (%s) with a ConfigError naming it', (variable, value) => {
    const error = configError({ ...base, [variable]: value });
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.code).toBe('POSTBOX_ERR_CONFIG');
    expect(error.message.startsWith(variable)).toBe(true);
    expect(error.details.variable).toBe(variable);
  });

  it('needs KAFKA_BROKERS only when the relay is enabled', () => {
    expect(configError({}).details.variable).toBe('KAFKA_BROKERS');
    expect(configError({ OUTBOX_ENABLED: 'true' }).details.variable).toBe('KAFKA_BROKERS');
    expect(loadKafkaRelayConfig({ OUTBOX_ENABLED: 'false' })).toMatchObject({ enabled: false, kafka: undefined });
  });

  it('gives no relay when OUTBOX_ENABLED is false', () => {
    const postbox = {} as Postbox;
    expect(kafkaRelayFromEnv(postbox, { topics: ['orders'] }, { ...base, OUTBOX_ENABLED: 'false' })).toBeUndefined();
    expect(kafkaRelayFromEnv(postbox, { topics: ['orders'] }, { OUTBOX_ENABLED: '0' })).toBeUndefined();
  });

  it('never puts the SASL password in an error', () => {
    const password = 'hunter2-Sup3rSecret';
    const cases: { [name: string]: string }[] = [
      { KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_PASSWORD: password },
      { KAFKA_SASL_MECHANISM: 'kerberos', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: password },
      { KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: password },
      { KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: password, KAFKA_SSL: 'perhaps' },
    ];
    const variables = cases.map((env) => {
      const error = configError({ ...base, ...env });
      expect(error.message).not.toContain(password);
      expect(JSON.stringify(error.details)).not.toContain(password);
      return error.details.variable;
    });
    expect(variables).toEqual(['KAFKA_SASL_USERNAME', 'KAFKA_SASL_MECHANISM', 'KAFKA_SASL_MECHANISM', 'KAFKA_SSL']);
  });
});
