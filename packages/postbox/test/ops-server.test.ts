import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDeadLetter } from '../src/deadletters/dead-letter-store.js';
import { PostboxMetrics } from '../src/observability/metrics.js';
import { startOpsServer } from '../src/ops/ops-server.js';
import { Postbox } from '../src/postbox.js';
import { Router } from '../src/router/router.js';
import { postgresDatabase } from '../src/sql/postgres-database.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { waitFor } from './support/wait.js';

describe('metrics and health endpoints', () => {
  let database: TestDatabase;
  let postbox: Postbox;
  let router: Router;
  let server: { url: string; close(): Promise<void> };

  beforeAll(async () => {
    database = await createTestDatabase();
    postbox = await Postbox.create({ databaseUrl: database.url, consumerDefaults: { pollIntervalMs: 50 } });
    router = new Router(postbox).addHandler({
      name: 'metered',
      topics: ['metered'],
      retry: { maxAttempts: 2, initialDelayMs: 5 },
      handle: async (message) => {
        if (message.payload === 'bad') throw new Error('bad');
      },
    });
    await router.start();
    server = await startOpsServer({ db: postbox.db, metrics: router.metrics, port: 0, maxLagMessages: 5 });
  });
  afterAll(async () => {
    await server.close();
    await router.stop();
    await postbox.close();
    await database.drop();
  });

  it('serves Prometheus metrics with handler outcomes, lag, the watermark delay and dead letters by group', async () => {
    await postbox.publish(['ok', 'bad', 'ok'].map((payload) => ({ topic: 'metered', type: 't', payload })));
    await waitFor(async () => (await postbox.groupStatus('metered'))[0]?.lagMessages === 0, 10_000, 'the group');
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    expect(text).toMatch(/postbox_messages_handled_total\{group="metered",handler="metered",outcome="handled"\} 2/);
    expect(text).toMatch(/postbox_messages_handled_total\{group="metered",handler="metered",outcome="dead_lettered"\} 1/);
    expect(text).toMatch(/postbox_handler_errors_total\{group="metered",handler="metered"\} 2/);
    expect(text).toMatch(/postbox_dead_letters\{group="metered"\} 1/);
    expect(text).toMatch(/postbox_consumer_lag_messages\{group="metered",partition="0"\} 0/);
    expect(text).toMatch(/postbox_watermark_delay_seconds \d/);
    expect(text).toContain('# TYPE outbox_events_processed_total counter');
    expect(text).toContain('# TYPE kafka_events_processed_total counter');
  });

  it('answers live and ready, and reports degraded when a group falls behind', async () => {
    expect((await fetch(`${server.url}/health/live`)).status).toBe(200);
    const ready = await fetch(`${server.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'healthy' });

    await router.stop();
    await postbox.publish(Array.from({ length: 10 }, (_, i) => ({ topic: 'metered', type: 't', payload: i })));
    const degraded = await fetch(`${server.url}/health/ready`);
    expect(degraded.status).toBe(200);
    const body = (await degraded.json()) as { status: string; checks: { name: string; status: string; detail?: string }[] };
    expect(body.status).toBe('degraded');
    expect(body.checks).toContainEqual({ name: 'group:metered', status: 'degraded', detail: 'lag 10 messages' });
  });

  it('is unhealthy when the database is unreachable, without showing its password', async () => {
    const unreachable = postgresDatabase('postgres://app:s3cret-pw@127.0.0.1:1/nowhere', { connectionTimeoutMs: 500 });
    const other = await startOpsServer({ db: unreachable, metrics: new PostboxMetrics(), port: 0 });
    try {
      const response = await fetch(`${other.url}/health/ready`);
      expect(response.status).toBe(503);
      const text = await response.text();
      expect(JSON.parse(text)).toMatchObject({ status: 'unhealthy', checks: [{ name: 'database', status: 'unhealthy' }] });
      expect(text).not.toContain('s3cret-pw');
    } finally {
      await other.close();
      await unreachable.close();
    }
  });

  it('counts dead letters of groups this process does not run', async () => {
    await addDeadLetter(postbox.db, {
      group: 'elsewhere',
      handler: 'elsewhere',
      source: 'kafka',
      messageId: 'kafka:t:0:1',
      topic: 't',
      type: null,
      key: null,
      payload: undefined,
      rawPayload: '{"truncated',
      headers: {},
      sourcePosition: '0/1',
      error: new Error('Unexpected end of JSON input'),
      attempts: 0,
      firstFailedAt: new Date(),
      lastFailedAt: new Date(),
    });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/postbox_dead_letters\{group="elsewhere"\} 1/);
  });
});
