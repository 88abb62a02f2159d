import { fileURLToPath } from 'node:url';
import { type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LogMessage } from '../src/log/message.js';
import { readAfter } from '../src/log/read.js';
import { Postbox } from '../src/postbox.js';
import type { RoutedMessage } from '../src/router/routed-message.js';
import { Router } from '../src/router/router.js';
import { kafkaSource } from '../src/transports/kafka/kafka-source.js';
import { createKafkaRelay, type KafkaRelay } from '../src/transports/kafka/relay.js';
import { runToEnd } from './support/child.js';
import { type MockCluster, startMockCluster } from './support/kafka-mock.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { type RecordedTraces, recordTraces, traceparentOf } from './support/tracing.js';
import { waitFor } from './support/wait.js';

const traces: RecordedTraces = recordTraces();
const tracer = trace.getTracer('application');
const fastRetry = { initialDelayMs: 5, maxDelayMs: 20 };

/** Runs fn in an active span of the application's, as an HTTP request handler would; resolves to that span's context. */
async function inRequest(name: string, fn: () => Promise<unknown>): Promise<ReturnType<Span['spanContext']>> {
  return tracer.startActiveSpan(name, async (span) => {
    try {
      await fn();
      return span.spanContext();
    } finally {
      span.end();
    }
  });
}

/** The messages of a topic, once readers can see them (an open transaction elsewhere on the server may hold them back). */
async function visibleIn(postbox: Postbox, topic: string): Promise<LogMessage[]> {
  let messages: LogMessage[] = [];
  const from = { transactionId: 0n, globalPosition: 0n };
  await waitFor(
    async () => {
      messages = await readAfter(postbox.db, { topics: [topic], after: from, limit: 10 });
      return messages.length > 0;
    },
    10_000,
    topic,
  );
  return messages;
}

function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

describe('tracing on the log', () => {
  let database: TestDatabase;
  let postbox: Postbox;
  const stops: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    postbox = await Postbox.create({ databaseUrl: database.url, consumerDefaults: { pollIntervalMs: 50, leaseTtlMs: 2_000 } });
  });
  afterAll(async () => {
    for (const stop of stops) await stop();
    await postbox?.close(2_000);
    await database?.drop();
  });
  beforeEach(() => traces.exporter.reset());
  const visible = (topic: string) => visibleIn(postbox, topic);

  it('makes a producer span at enqueue, writes its context on the message, and handles the message in its child', async () => {
    let id = '';
    const request = await inRequest('POST /orders', async () => {
      [id = ''] = await postbox.publish({ topic: 'orders', type: 'order.placed', key: 'o-1', payload: { n: 1 } });
    });
    const producer = traces.one('send orders', { 'messaging.message.id': id });
    expect(producer.kind).toBe(SpanKind.PRODUCER);
    expect(producer.spanContext().traceId).toBe(request.traceId);
    expect(parentOf(producer)).toBe(request.spanId);
    expect(producer.attributes).toMatchObject({
      'messaging.system': 'postbox',
      'messaging.operation.type': 'send',
      'messaging.destination.name': 'orders',
    });

    const handled: LogMessage[] = [];
    const consumer = postbox.consumer({
      group: 'orders-traced',
      topics: ['orders'],
      handleMessage: async (message) => void handled.push(message),
    });
    stops.push(() => consumer.stop(2_000));
    await consumer.start();
    await waitFor(() => handled.length === 1, 10_000, 'the message');
    expect(handled[0]?.headers.traceparent).toBe(traceparentOf(producer.spanContext()));

    await waitFor(() => traces.named('process orders').length === 1, 5_000, 'the consumer span');
    const [processing] = traces.named('process orders') as [ReadableSpan];
    expect(processing.kind).toBe(SpanKind.CONSUMER);
    expect(processing.spanContext().traceId).toBe(request.traceId);
    expect(parentOf(processing)).toBe(producer.spanContext().spanId);
    expect(processing.attributes).toMatchObject({
      'messaging.system': 'postbox',
      'messaging.operation.type': 'process',
      'messaging.destination.name': 'orders',
      'messaging.consumer.group.name': 'orders-traced',
      'messaging.destination.partition.id': '0',
    });
  });

  it('links a span of a batch to the producer of each message in it', async () => {
    // Three writers' spans, committed together, so that one batch holds all three whatever else the server runs.
    const requests = await postbox.transaction(async (tx) => {
      const contexts = [];
      for (const n of [1, 2, 3])
        contexts.push(await inRequest(`request ${n}`, () => postbox.enqueue(tx, { topic: 'batched', type: 't', payload: { n } })));
      return contexts;
    });
    const batches: number[] = [];
    const consumer = postbox.consumer({
      group: 'batched-traced',
      topics: ['batched'],
      batchSize: 10,
      handleBatch: async (messages) => void batches.push(messages.length),
    });
    stops.push(() => consumer.stop(2_000));
    await consumer.start();
    await waitFor(() => batches.length > 0, 10_000, 'the batch');
    expect(batches).toEqual([3]);
    const [processing] = traces.named('process batched') as [ReadableSpan];
    expect(processing.attributes['messaging.batch.message_count']).toBe(3);
    const producers = traces.named('send batched');
    expect(producers.map((span) => span.spanContext().traceId).sort()).toEqual(requests.map((request) => request.traceId).sort());
    expect(processing.links.map((link) => link.context.spanId).sort()).toEqual(producers.map((span) => span.spanContext().spanId).sort());
  });

  it('records retries and the dead letter as events of the message span, with the error', async () => {
    const router = new Router(postbox, { redeliveryIntervalMs: 100 });
    stops.push(() => router.stop(2_000));
    router.addHandler({
      name: 'failing-traced',
      topics: ['failing'],
      retry: { maxAttempts: 3, ...fastRetry },
      handle: async () => {
        throw new Error('the warehouse is closed');
      },
    });
    await router.start();
    const request = await inRequest('POST /failing', () => postbox.publish({ topic: 'failing', type: 't', payload: {} }));
    await waitFor(
      () => traces.named('process failing').some((span) => span.attributes['postbox.handler'] === 'failing-traced'),
      10_000,
      'the span',
    );
    const span = traces.one('process failing', { 'postbox.handler': 'failing-traced' });
    const producer = traces.one('send failing', {});
    expect(span.spanContext().traceId).toBe(request.traceId);
    expect(parentOf(span)).toBe(producer.spanContext().spanId);
    expect(span.attributes).toMatchObject({ 'postbox.outcome': 'dead_lettered', 'messaging.consumer.group.name': 'failing-traced' });
    expect(span.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'the warehouse is closed' });
    const names = span.events.map((event) => event.name);
    expect(names.filter((name) => name === 'retry')).toHaveLength(2);
    expect(names.at(-1)).toBe('exception');
    expect(names).toContain('dead_letter');
    const retries = span.events.filter((event) => event.name === 'retry');
    expect(retries.map((event) => event.attributes?.['postbox.attempt'])).toEqual([1, 2]);
    const exceptions = span.events.filter((event) => event.name === 'exception');
    expect(exceptions.every((event) => event.attributes?.['exception.message'] === 'the warehouse is closed')).toBe(true);
  });

  it('keeps the trace context and traceId a message already carries', async () => {
    const own = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const [id = ''] = await postbox.publish({
      topic: 'own',
      type: 't',
      traceId: 'legacy-trace',
      headers: { traceparent: own },
      payload: {},
    });
    const [message] = await visible('own');
    expect(message?.id).toBe(id);
    expect(message?.headers).toMatchObject({ traceparent: own, traceId: 'legacy-trace' });
    await inRequest('POST /accounts', () => postbox.eventStore().append('account-1', { type: 'opened', data: {} }));
    const producer = traces.one('send account', {});
    expect(producer.attributes['messaging.operation.name']).toBe('append');
    const [event] = await visible('account');
    expect(event?.headers.traceparent).toBe(traceparentOf(producer.spanContext()));
  });
});

describe('tracing without an SDK', () => {
  it('writes no trace context when the application has the API but registers no SDK', async () => {
    const database = await createTestDatabase();
    try {
      const script = fileURLToPath(new URL('fixtures/untraced-publish.ts', import.meta.url));
      const run = await runToEnd(process.execPath, ['--conditions=postbox-source', '--import', 'tsx', script], {
        env: { ...process.env, DATABASE_URL: database.url },
        timeoutMs: 30_000,
      });
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout)).toEqual({ schemaVersion: 1 });
    } finally {
      await database.drop();
    }
  });
});

describe('tracing through Kafka', () => {
  let database: TestDatabase;
  let postbox: Postbox;
  let cluster: MockCluster;
  let relay: KafkaRelay | undefined;
  let router: Router | undefined;

  beforeAll(async () => {
    [database, cluster] = await Promise.all([createTestDatabase(), startMockCluster()]);
    postbox = await Postbox.create({ databaseUrl: database.url, consumerDefaults: { pollIntervalMs: 50, leaseTtlMs: 2_000 } });
    await cluster.createTopic('shipments', 2);
  });
  afterAll(async () => {
    await Promise.all([relay?.stop(2_000), router?.stop(2_000)]);
    await postbox?.close(2_000);
    await Promise.all([database?.drop(), cluster?.stop()]);
  });

  it('carries the producer context through the relay into Kafka headers, and the Kafka source continues the trace', async () => {
    relay = createKafkaRelay(postbox, {
      kafka: { brokers: cluster.brokers },
      topics: ['shipments'],
      idempotent: false,
      pollIntervalMs: 50,
    });
    await relay.start();
    const received: RoutedMessage[] = [];
    router = new Router(postbox);
    router.addHandler({
      name: 'shipments-from-kafka',
      topics: ['shipments'],
      handle: async (message) => void received.push(message),
      source: kafkaSource({
        kafka: { brokers: cluster.brokers },
        startFrom: 'earliest',
        sessionTimeoutMs: 6_000,
        heartbeatIntervalMs: 300,
        maxWaitTimeMs: 100,
      }),
    });
    await router.start();

    const request = await inRequest('POST /shipments', () =>
      postbox.publish({ topic: 'shipments', type: 'shipped', key: 's-1', payload: {} }),
    );
    await waitFor(() => received.length === 1, 30_000, 'the message through Kafka');
    const producer = traces.one('send shipments', { 'messaging.system': 'postbox' });
    expect(received[0]?.headers.traceparent).toBe(traceparentOf(producer.spanContext()));

    const relayBatch = traces.one('process shipments', { 'messaging.consumer.group.name': 'postbox-relay' });
    expect(parentOf(relayBatch)).toBe(producer.spanContext().spanId);
    const send = traces.one('send shipments', { 'messaging.system': 'kafka' });
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(send.spanContext().traceId).toBe(request.traceId);
    expect(parentOf(send)).toBe(relayBatch.spanContext().spanId);

    const fromKafka = () =>
      traces.named('process shipments').filter((span) => span.attributes['messaging.consumer.group.name'] === 'shipments-from-kafka');
    await waitFor(() => fromKafka().length === 2, 5_000, 'the batch and message spans');
    expect(
      fromKafka()
        .map((span) => span.attributes['postbox.handler'] ?? 'batch')
        .sort(),
    ).toEqual(['batch', 'shipments-from-kafka']);
    for (const span of fromKafka()) {
      expect(span.kind).toBe(SpanKind.CONSUMER);
      expect(span.spanContext().traceId).toBe(request.traceId);
      expect(parentOf(span)).toBe(producer.spanContext().spanId);
      expect(span.attributes['messaging.system']).toBe('kafka');
    }
  });
});
