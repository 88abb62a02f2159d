import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MockCluster, startMockCluster } from '../../../packages/postbox/test/support/kafka-mock.js';
import { createTestDatabase, type TestDatabase } from '../../../packages/postbox/test/support/postgres.js';
import { waitFor } from '../../../packages/postbox/test/support/wait.js';
import { loadConfig } from '../src/config.js';
import { tracingRequested } from '../src/telemetry/tracing-env.js';
import { type MainProcess, startMainProcess } from './support/main-process.js';
import { type OtlpReceiver, otlpSpanKind, type ReceivedSpan, startOtlpReceiver } from './support/otlp-receiver.js';

const topic = 'todo-history-events';
const historyGroup = 'todo-consumer-group-go';

interface RunningApp {
  app: MainProcess;
  base: string;
}

async function startApp(env: Record<string, string>): Promise<RunningApp> {
  const app = startMainProcess({ PORT: '0', OUTBOX_INTERVAL: '100ms', ...env });
  const listening = /todo-history: (http:\/\/127\.0\.0\.1:\d+)/;
  await waitFor(() => listening.test(app.output()) || app.child.exitCode !== null, 45_000, 'the URL line');
  const base = listening.exec(app.output())?.[1];
  if (!base) throw new Error(`the app did not start: ${app.output()}`);
  return { app, base };
}

/**
 * POSTs a todo group and resolves to the message id of its history event, once the history consumer
 * has stored its row. It asks the database, not the app, so that the wait adds no span of its own.
 */
async function createGroupAndWaitForHistory(base: string, databaseUrl: string, timeoutMs = 30_000): Promise<string> {
  const created = await fetch(`${base}/api/groups`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Traced', user: 'alice' }),
  });
  expect(created.status).toBe(201);
  const { groupId } = (await created.json()) as { groupId: string };
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    let rows: { message_id: string }[] = [];
    const stored = async () => {
      ({ rows } = await client.query<{ message_id: string }>('select message_id from todo_event_logs where group_id = $1', [groupId]));
      return rows.length > 0;
    };
    await waitFor(stored, timeoutMs, 'the history row');
    expect(rows).toHaveLength(1);
    return rows[0]?.message_id as string;
  } finally {
    await client.end();
  }
}

async function stop({ app }: RunningApp): Promise<number | null> {
  app.child.kill('SIGTERM');
  return app.exited;
}

function otelEnv(receiver: OtlpReceiver, scheduleDelayMs: number): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: String(scheduleDelayMs),
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_LOGS_EXPORTER: 'none',
  };
}

/** The one span matching, once it has arrived; fails if two match. */
async function oneSpan(receiver: OtlpReceiver, what: string, matches: (span: ReceivedSpan) => boolean): Promise<ReceivedSpan> {
  await waitFor(() => receiver.spans().some(matches), 15_000, what);
  const found = receiver.spans().filter(matches);
  expect(found, what).toHaveLength(1);
  return found[0] as ReceivedSpan;
}

function isDescendant(span: ReceivedSpan, ancestor: ReceivedSpan, spans: readonly ReceivedSpan[]): boolean {
  const byId = new Map(spans.filter((each) => each.traceId === span.traceId).map((each) => [each.spanId, each]));
  for (let parent = span.parentSpanId; parent !== undefined; parent = byId.get(parent)?.parentSpanId) {
    if (parent === ancestor.spanId) return true;
  }
  return false;
}

const isPgQuery = (span: ReceivedSpan) => span.attributes['db.system.name'] === 'postgresql' && span.name.startsWith('pg.query:');

/** The HTTP server span of POST /api/groups, and the outbox's producer span of its history event. */
async function requestAndProducer(receiver: OtlpReceiver, messageId: string): Promise<[ReceivedSpan, ReceivedSpan]> {
  const request = await oneSpan(
    receiver,
    'the HTTP server span',
    (span) => span.kind === otlpSpanKind.server && span.name === 'POST /api/groups',
  );
  expect(request.parentSpanId).toBeUndefined();
  expect(request.attributes).toMatchObject({
    'http.request.method': 'POST',
    'http.route': '/api/groups',
    'http.response.status_code': 201,
  });
  expect(request.resource['service.name']).toBe('todo-history');
  const producer = await oneSpan(receiver, 'the producer span', (span) => span.attributes['messaging.message.id'] === messageId);
  expect(producer).toMatchObject({ name: `send ${topic}`, kind: otlpSpanKind.producer, traceId: request.traceId });
  expect(producer.attributes).toMatchObject({
    'messaging.system': 'postbox',
    'messaging.operation.type': 'send',
    'messaging.operation.name': 'enqueue',
    'messaging.destination.name': topic,
  });
  expect(isDescendant(producer, request, receiver.spans())).toBe(true);
  return [request, producer];
}

describe('tracing with OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  let database: TestDatabase;
  let receiver: OtlpReceiver;
  let running: RunningApp | undefined;

  beforeEach(async () => {
    [database, receiver] = await Promise.all([createTestDatabase(), startOtlpReceiver()]);
  });
  afterEach(async () => {
    running?.app.child.kill('SIGKILL');
    await running?.app.exited;
    running = undefined;
    await receiver.close();
    await database.drop();
  });

  it('exports one trace from the HTTP request through the outbox to the history consumer, with the pg queries of both', async () => {
    running = await startApp({ DATABASE_URL: database.url, ...otelEnv(receiver, 100) });
    expect(running.app.output()).toContain(`todo-history: tracing: otlp (http/json) to ${receiver.url}/v1/traces as todo-history`);
    const messageId = await createGroupAndWaitForHistory(running.base, database.url);

    const [request, producer] = await requestAndProducer(receiver, messageId);
    const consumer = await oneSpan(
      receiver,
      'the history consumer span',
      (span) => span.traceId === request.traceId && span.kind === otlpSpanKind.consumer,
    );
    expect(consumer.name).toBe(`process ${topic}`);
    expect(consumer.parentSpanId).toBe(producer.spanId);
    expect(consumer.attributes).toMatchObject({
      'messaging.system': 'postbox',
      'messaging.operation.type': 'process',
      'messaging.destination.name': topic,
      'messaging.consumer.group.name': historyGroup,
      'messaging.destination.partition.id': expect.stringMatching(/^\d+$/),
    });

    // node-postgres is instrumented too: the request's INSERT of the todo and the consumer's insert of the history row.
    const queries = () => receiver.spans().filter((span) => span.traceId === request.traceId && isPgQuery(span));
    await waitFor(() => queries().some((span) => isDescendant(span, consumer, receiver.spans())), 5_000, 'the consumer query spans');
    expect(queries().some((span) => span.name.startsWith('pg.query:INSERT') && isDescendant(span, request, receiver.spans()))).toBe(true);

    expect(await stop(running)).toBe(0);
  });

  it('exports the spans still buffered when it shuts down gracefully', async () => {
    // Spans wait for a full batch or the next scheduled export: here, only the shutdown's.
    running = await startApp({ DATABASE_URL: database.url, ...otelEnv(receiver, 600_000) });
    const messageId = await createGroupAndWaitForHistory(running.base, database.url);
    expect(receiver.requests()).toEqual([]);
    expect(await stop(running)).toBe(0);
    const [request] = await requestAndProducer(receiver, messageId);
    expect(receiver.spans().some((span) => span.traceId === request.traceId && span.kind === otlpSpanKind.consumer)).toBe(true);
  });

  it('refuses an OTEL_* value the SDK would ignore, naming the variable, and exits 1', async () => {
    const app = startMainProcess({ DATABASE_URL: database.url, ...otelEnv(receiver, 100), OTEL_EXPORTER_OTLP_PROTOCOL: 'http' });
    expect(await app.exited).toBe(1);
    expect(app.output()).toContain(
      'todo-history: POSTBOX_ERR_CONFIG: OTEL_EXPORTER_OTLP_PROTOCOL must be one of grpc, http/protobuf, http/json (got "http")',
    );
  });
});

describe('tracing through Kafka', () => {
  let database: TestDatabase;
  let receiver: OtlpReceiver;
  let cluster: MockCluster;
  let running: RunningApp | undefined;

  beforeAll(async () => {
    [database, receiver, cluster] = await Promise.all([createTestDatabase(), startOtlpReceiver(), startMockCluster()]);
    await cluster.createTopic(topic, 4);
  });
  afterAll(async () => {
    running?.app.child.kill('SIGKILL');
    await running?.app.exited;
    await receiver?.close();
    await Promise.all([database?.drop(), cluster?.stop()]);
  });

  it('continues the trace through the relay send span and the Kafka source span', async () => {
    running = await startApp({
      DATABASE_URL: database.url,
      KAFKA_BROKERS: cluster.bootstrap,
      // The mock cluster refuses KafkaJS's idempotent producer; real clusters keep it on.
      KAFKA_IDEMPOTENT: 'false',
      ...otelEnv(receiver, 100),
    });
    const messageId = await createGroupAndWaitForHistory(running.base, database.url);
    const [request, producer] = await requestAndProducer(receiver, messageId);
    const inTrace = (span: ReceivedSpan) => span.traceId === request.traceId;

    const relayBatch = await oneSpan(
      receiver,
      'the relay batch span',
      (span) => inTrace(span) && span.attributes['messaging.consumer.group.name'] === 'postbox-relay',
    );
    expect(relayBatch).toMatchObject({ name: `process ${topic}`, kind: otlpSpanKind.consumer, parentSpanId: producer.spanId });
    const send = await oneSpan(receiver, 'the relay send span', (span) => inTrace(span) && span.attributes['postbox.relay'] === true);
    expect(send).toMatchObject({ name: `send ${topic}`, kind: otlpSpanKind.producer, parentSpanId: relayBatch.spanId });
    expect(send.attributes).toMatchObject({
      'messaging.system': 'kafka',
      'messaging.operation.type': 'send',
      'messaging.destination.name': topic,
      'messaging.batch.message_count': 1,
    });

    const fromKafka = await oneSpan(
      receiver,
      'the Kafka source span',
      (span) => inTrace(span) && span.attributes['messaging.consumer.group.name'] === historyGroup,
    );
    expect(fromKafka).toMatchObject({ name: `process ${topic}`, kind: otlpSpanKind.consumer, parentSpanId: producer.spanId });
    expect(fromKafka.attributes).toMatchObject({
      'messaging.system': 'kafka',
      'messaging.operation.type': 'process',
      'messaging.destination.name': topic,
    });

    expect(await stop(running)).toBe(0);
  }, 90_000);
});

describe('without tracing settings', () => {
  let database: TestDatabase;
  let receiver: OtlpReceiver;
  let running: RunningApp | undefined;

  beforeEach(async () => {
    [database, receiver] = await Promise.all([createTestDatabase(), startOtlpReceiver()]);
  });
  afterEach(async () => {
    running?.app.child.kill('SIGKILL');
    await running?.app.exited;
    running = undefined;
    await receiver.close();
    await database.drop();
  });

  /** The headers of a message on the log: with an SDK registered, the producer span writes its traceparent there. */
  async function headersOf(messageId: string): Promise<Record<string, unknown>> {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ headers: Record<string, unknown> }>(
        'select headers from postbox.messages where message_id = $1',
        [messageId],
      );
      expect(rows).toHaveLength(1);
      return rows[0]?.headers as Record<string, unknown>;
    } finally {
      await client.end();
    }
  }

  it.each([
    ['no OTEL_* variable', {}],
    ['OTEL_SDK_DISABLED=true', { OTEL_SDK_DISABLED: 'true' }],
    ['OTEL_TRACES_EXPORTER=none', { OTEL_TRACES_EXPORTER: 'none' }],
  ])('never loads the SDK with %s', async (_name, extra: Record<string, string>) => {
    const endpoint = Object.keys(extra).length > 0 ? otelEnv(receiver, 100) : {};
    running = await startApp({ DATABASE_URL: database.url, ...endpoint, ...extra });
    const messageId = await createGroupAndWaitForHistory(running.base, database.url);
    expect(await headersOf(messageId)).not.toHaveProperty('traceparent');
    expect(await stop(running)).toBe(0);
    expect(running.app.output()).not.toContain('tracing');
    expect(receiver.requests()).toEqual([]);
  });
});

describe('OTEL_* settings', () => {
  it('asks for traces with an OTLP endpoint or a trace exporter, unless the SDK is disabled or the exporter is none', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_SERVICE_NAME: 'todo', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'console' })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: ' none ', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(false);
    expect(tracingRequested({ OTEL_SDK_DISABLED: 'TRUE', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(false);
    expect(tracingRequested({ OTEL_SDK_DISABLED: 'false', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
  });

  it('resolves where the spans go and the service name as the SDK does', () => {
    expect(loadConfig({}).tracing).toBeUndefined();
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }).tracing).toEqual({
      exporters: ['otlp'],
      protocol: 'http/protobuf',
      endpoint: 'http://collector:4318/v1/traces',
      serviceName: 'todo-history',
    });
    expect(
      loadConfig({ OTEL_TRACES_EXPORTER: 'otlp,console', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OUTBOX_SERVICE_NAME: 'orders' }).tracing,
    ).toEqual({ exporters: ['otlp', 'console'], protocol: 'grpc', endpoint: 'http://localhost:4317', serviceName: 'orders' });
    expect(
      loadConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/otlp',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,service.name=todo%20api',
      }).tracing,
    ).toEqual({ exporters: ['otlp'], protocol: 'http/json', endpoint: 'https://traces.example/otlp', serviceName: 'todo api' });
  });

  it.each([
    ['OTEL_TRACES_EXPORTER', 'jaeger', 'must be a comma-separated list of otlp, zipkin, console, or none'],
    ['OTEL_TRACES_EXPORTER', 'otlp,none', 'must be a comma-separated list of otlp, zipkin, console, or none'],
    ['OTEL_EXPORTER_OTLP_PROTOCOL', 'http', 'must be one of grpc, http/protobuf, http/json'],
    ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'json', 'must be one of grpc, http/protobuf, http/json'],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', 'collector:4318', 'must be an http:// or https:// URL'],
    ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'not a url', 'must be an http:// or https:// URL'],
    ['OTEL_SDK_DISABLED', 'yes', 'must be true or false'],
  ])('refuses %s=%s', (variable, value, reason) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(`${variable} ${reason} (got "${value}")`);
  });
});
