import { networkInterfaces } from 'node:os';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPostboxError } from '../src/errors/postbox-error.js';
import type { EventStore } from '../src/eventstore/event-store.js';
import { isLoopbackHost } from '../src/ops/console/loopback.js';
import { type ConsoleOptions, registerConsole } from '../src/ops/console/register-console.js';
import { ThroughputSampler } from '../src/ops/console/throughput-sampler.js';
import { Fastify } from '../src/ops/fastify.js';
import { Postbox } from '../src/postbox.js';
import { type AsyncProjection, defineProjection } from '../src/projections/projection.js';
import type { ProjectionRunner } from '../src/projections/projection-runner.js';
import { Router } from '../src/router/router.js';
import { pgliteDatabase } from '../src/sql/pglite-database.js';
import { createKafkaRelay, type KafkaRelay } from '../src/transports/kafka/relay.js';
import { holdTransaction } from './support/held-transaction.js';
import { type MockCluster, startMockCluster } from './support/kafka-mock.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { delay, waitFor } from './support/wait.js';

interface Answer {
  status: number;
  body: any;
  headers: Record<string, unknown>;
  text: string;
}

async function call(
  app: FastifyInstance,
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await app.inject({
    method: method as 'GET',
    url,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    payload: body === undefined ? undefined : JSON.stringify(body),
  });
  let parsed: unknown = response.body;
  try {
    parsed = response.body ? JSON.parse(response.body) : undefined;
  } catch {
    // not JSON: the text itself
  }
  return { status: response.statusCode, body: parsed, headers: response.headers, text: response.body };
}

/** A console on a Fastify instance of its own, with every route it adds recorded. */
async function consoleApp(options: ConsoleOptions): Promise<{ app: FastifyInstance; routes: { method: string; url: string }[] }> {
  const app = Fastify({ logger: false });
  const routes: { method: string; url: string }[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });
  await registerConsole(app, options);
  await app.ready();
  return { app, routes };
}

const changing = (routes: readonly { method: string; url: string }[]) =>
  routes.filter((route) => !['GET', 'HEAD', 'OPTIONS'].includes(route.method) && route.url.startsWith('/ops/api/'));

/** A route's URL with its parameters filled in. */
const fill = (url: string, value: string) => url.replace(/:[a-z]+/g, encodeURIComponent(value));

type CartEvent = { type: 'ItemAdded'; data: { price: number } };

function cartTotals(): AsyncProjection<CartEvent> {
  return defineProjection<CartEvent>({
    name: 'console-cart-totals',
    categories: ['consolecart'],
    readModel: {
      async create(tx, version) {
        await tx.query(`create table console_cart_totals_v${version} (cart text primary key, total int not null)`);
      },
      async drop(tx, version) {
        await tx.query(`drop table console_cart_totals_v${version}`);
      },
    },
    async handle(events, context) {
      for (const event of events) {
        await context.tx.query(
          `insert into ${context.table('console_cart_totals')} as t values ($1, $2) on conflict (cart) do update set total = t.total + excluded.total`,
          [event.streamId, event.data.price],
        );
      }
    },
  });
}

describe('the console API on PostgreSQL', () => {
  let database: TestDatabase;
  let cluster: MockCluster;
  let postbox: Postbox;
  let router: Router;
  let relay: KafkaRelay;
  let store: EventStore;
  let projection: ProjectionRunner<CartEvent>;
  let app: FastifyInstance;
  let routes: { method: string; url: string }[];
  const poisonFails = { on: true };
  const handledOrders: string[] = [];

  beforeAll(async () => {
    [database, cluster] = await Promise.all([createTestDatabase(), startMockCluster()]);
    await cluster.createTopic('console-relayed', 2);
    postbox = await Postbox.create({ databaseUrl: database.url, consumerDefaults: { pollIntervalMs: 50 } });
    router = new Router(postbox, { redeliveryIntervalMs: 100 })
      .addHandler({
        name: 'console-orders',
        topics: ['orders'],
        partitions: 2,
        retry: { maxAttempts: 2, initialDelayMs: 5 },
        handle: async (message) => {
          const payload = message.payload as { id: string; poison?: boolean };
          if (payload.poison && poisonFails.on) throw new Error(`cannot ship ${payload.id}`);
          handledOrders.push(payload.id);
        },
      })
      .addHandler({ name: 'console-audit', topics: ['audit'], handle: async () => undefined });
    await router.start();
    relay = createKafkaRelay(postbox, {
      group: 'console-relay',
      topics: ['console-relayed'],
      kafka: { brokers: cluster.brokers },
      idempotent: false,
      pollIntervalMs: 50,
    });
    await relay.start();
    store = postbox.eventStore();
    projection = store.projection(cartTotals(), { controlIntervalMs: 100, consumer: { pollIntervalMs: 50 } });
    await projection.start();
    ({ app, routes } = await consoleApp({ postbox, relay, sampler: { intervalMs: 100, windowMs: 1_000, maxGroups: 10 } }));
  });

  afterAll(async () => {
    await app?.close();
    await projection?.stop(2_000);
    await relay?.stop(2_000);
    await router?.stop(2_000);
    await postbox?.close(2_000);
    await Promise.all([database?.drop(), cluster?.stop()]);
  });

  it('serves the page under the prefix, and nothing but its own files', async () => {
    const bare = await call(app, 'GET', '/ops');
    expect(bare.status).toBe(302);
    expect(bare.headers.location).toBe('/ops/');
    const page = await call(app, 'GET', '/ops/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.text).toContain('<title>Postbox console</title>');
    expect(page.text).toContain('src="assets/js/main.js"');
    const script = await call(app, 'GET', '/ops/assets/js/main.js');
    expect(script.status).toBe(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    const again = await call(app, 'GET', '/ops/assets/js/main.js', undefined, { 'if-none-match': String(script.headers.etag) });
    expect(again.status).toBe(304);
    for (const path of [
      '/ops/assets/index.html',
      '/ops/assets/../package.json',
      '/ops/assets/%2e%2e/package.json',
      '/ops/assets/js/nope.js',
    ]) {
      expect((await call(app, 'GET', path)).status, path).toBe(404);
    }
  });

  it('shows groups with their lag, partitions (owner, checkpoint, lag, time unowned, last error) and members', async () => {
    await postbox.publish(
      Array.from({ length: 20 }, (_, i) => ({ topic: 'orders', type: 'order', key: `customer-${i}`, payload: { id: `o${i}` } })),
    );
    await postbox.publish({ topic: 'audit', type: 'audit', payload: {} });
    const groupNamed = async (name: string) => (await call(app, 'GET', '/ops/api/groups')).body.find((group: any) => group.group === name);
    await waitFor(
      async () => {
        const [orders, audit] = [await groupNamed('console-orders'), await groupNamed('console-audit')];
        return orders?.lagMessages === 0 && orders.partitions.every((p: any) => p.owner) && audit?.lagMessages === 0 && audit.leaseActive;
      },
      15_000,
      'both groups caught up and owned',
    );
    const orders = await groupNamed('console-orders');
    expect(orders).toMatchObject({
      topics: ['orders'],
      status: 'active',
      ephemeral: false,
      lagMessages: 0,
      lastError: null,
      leaseOwner: null,
      checkpoint: null,
    });
    expect(orders.members).toHaveLength(1);
    const [member] = orders.members;
    expect(member).toMatchObject({ member: expect.any(String), live: true, partitions: [0, 1], joinedAt: expect.any(String) });
    expect(orders.partitions).toEqual(
      [0, 1].map((partition) => ({
        partition,
        owner: member.member,
        expiredOwner: null,
        checkpoint: { transactionId: expect.stringMatching(/^\d+$/), globalPosition: expect.stringMatching(/^\d+$/) },
        lagMessages: 0,
        lagSeconds: 0,
        unownedSeconds: 0,
        lastError: null,
      })),
    );
    const audit = await groupNamed('console-audit');
    expect(audit).toMatchObject({
      leaseActive: true,
      leaseOwner: expect.any(String),
      checkpoint: { transactionId: expect.stringMatching(/^\d+$/), globalPosition: expect.stringMatching(/^[1-9]\d*$/) },
    });
    expect(audit.partitions).toHaveLength(1);
  });

  it('lists dead letters with filters, shows one whole, retries one into its handler and discards another', async () => {
    const [first, second, third] = ['p1', 'p2', 'p3'];
    await postbox.publish([first, second, third].map((id) => ({ topic: 'orders', type: 'order', key: id, payload: { id, poison: true } })));
    const list = (query = '') => call(app, 'GET', `/ops/api/dead-letters${query}`);
    await waitFor(async () => (await list()).body.length === 3, 15_000, 'three dead letters');

    const open = (await list()).body;
    expect(open.map((letter: any) => letter.status)).toEqual(['pending', 'pending', 'pending']);
    for (const letter of open) {
      expect(letter).toMatchObject({ group: 'console-orders', handler: 'console-orders', topic: 'orders', type: 'order', attempts: 2 });
      expect(letter.errorMessage).toMatch(/^cannot ship p\d$/);
      expect(Object.keys(letter)).not.toEqual(expect.arrayContaining(['payload']));
      expect(letter).not.toHaveProperty('errorStack');
      expect(letter).not.toHaveProperty('headers');
    }
    const idOf = (id: string) => open.find((letter: any) => letter.errorMessage === `cannot ship ${id}`).id as string;

    expect((await list('?group=console-orders')).body).toHaveLength(3);
    expect((await list('?group=console-audit')).body).toEqual([]);
    expect((await list('?topic=orders&status=pending')).body).toHaveLength(3);
    expect((await list('?topic=audit')).body).toEqual([]);
    expect((await list('?status=retried')).body).toEqual([]);
    expect((await list('?limit=2')).body.map((letter: any) => letter.id)).toEqual(open.slice(0, 2).map((letter: any) => letter.id));
    for (const query of ['?limit=0', '?limit=1001', '?limit=two', '?status=lost', `?group=${'g'.repeat(201)}`]) {
      const refused = await list(query);
      expect(refused.status, query).toBe(400);
      expect(refused.body.error, query).toMatchObject({
        code: 'POSTBOX_ERR_BAD_REQUEST',
        message: expect.stringMatching(/^Invalid query: /),
      });
    }
    expect((await call(app, 'GET', '/ops/api/dead-letters/counts')).body).toEqual([
      { group: 'console-orders', status: 'pending', count: 3 },
    ]);

    const whole = await call(app, 'GET', `/ops/api/dead-letters/${idOf(first)}`);
    expect(whole.status).toBe(200);
    expect(whole.body).toMatchObject({
      id: idOf(first),
      group: 'console-orders',
      key: first,
      payload: { id: first, poison: true },
      headers: expect.any(Object),
      errorMessage: `cannot ship ${first}`,
      attempts: 2,
      status: 'pending',
    });
    expect(whole.body.errorStack).toMatch(/^Error: cannot ship p1\n\s+at /);
    for (const missing of ['999999999', 'abc', '1'.repeat(30)]) {
      const answer = await call(app, 'GET', `/ops/api/dead-letters/${missing}`);
      expect(answer.status, missing).toBe(404);
      expect(answer.body.error.code).toBe('POSTBOX_ERR_DEAD_LETTER_NOT_FOUND');
    }

    poisonFails.on = false;
    const retried = await call(app, 'POST', `/ops/api/dead-letters/${idOf(first)}/retry`, {});
    expect(retried).toMatchObject({ status: 200, body: { id: idOf(first), status: 'retrying' } });
    await waitFor(
      async () => (await call(app, 'GET', `/ops/api/dead-letters/${idOf(first)}`)).body.status === 'retried',
      15_000,
      'the retry',
    );
    expect(handledOrders).toContain(first);

    const discarded = await call(app, 'POST', `/ops/api/dead-letters/${idOf(second)}/discard`);
    expect(discarded).toMatchObject({ status: 200, body: { id: idOf(second), status: 'discarded' } });
    expect((await list('?status=discarded')).body.map((letter: any) => letter.id)).toEqual([idOf(second)]);
    expect((await list('?status=retried')).body.map((letter: any) => letter.id)).toEqual([idOf(first)]);
    expect((await list()).body.map((letter: any) => letter.id)).toEqual([idOf(third)]);
    expect(handledOrders).not.toContain(second);
    for (const [action, id] of [
      ['retry', idOf(second)],
      ['discard', idOf(first)],
      ['retry', '999999999'],
      ['discard', 'not-an-id'],
    ]) {
      const refused = await call(app, 'POST', `/ops/api/dead-letters/${id}/${action}`);
      expect(refused.status, `${action} ${id}`).toBe(404);
      expect(refused.body.error.code).toBe('POSTBOX_ERR_DEAD_LETTER_NOT_FOUND');
    }
    poisonFails.on = true;
  });

  it('lists parked messages and their counts, releases a key by id and by key, and discards by id and by key', async () => {
    const failing = new Set(['stuck', 'held', 'late', 'drop']);
    const handled: string[] = [];
    const parking = new Router(postbox, { redeliveryIntervalMs: 100 }).addHandler({
      name: 'console-parking',
      topics: ['console-parking'],
      retry: { maxAttempts: 1 },
      // Attempted again from parking only when released: the list holds still while the test reads it.
      park: { initialDelayMs: 600_000, maxDelayMs: 600_000, jitter: 0, maxAttempts: null, maxAgeMs: 3_600_000 },
      handle: async (message) => {
        const { seq } = message.payload as { seq: number };
        if (failing.has(message.key as string)) throw new Error(`no route for ${message.key} postgres://ops:hunter2@db/app`);
        handled.push(`${message.key}:${seq}`);
      },
    });
    await parking.start();
    try {
      const counts = { stuck: 3, held: 2, late: 1, drop: 2 };
      await postbox.publish(
        Object.entries(counts).flatMap(([key, count]) =>
          Array.from({ length: count }, (_, seq) => ({ topic: 'console-parking', type: 'parcel', key, payload: { seq } })),
        ),
      );
      const list = (query = '') => call(app, 'GET', `/ops/api/parked${query}`);
      await waitFor(async () => (await list('?group=console-parking')).body.length === 8, 15_000, 'eight parked messages');

      const parked = (await list('?group=console-parking')).body;
      expect(parked.map((message: any) => `${message.key}:${message.status}`)).toEqual([
        'drop:waiting',
        'drop:follower',
        'held:waiting',
        'held:follower',
        'late:waiting',
        'stuck:waiting',
        'stuck:follower',
        'stuck:follower',
      ]);
      for (const message of parked) {
        expect(message).toMatchObject({
          id: expect.stringMatching(/^\d+$/),
          group: 'console-parking',
          handler: 'console-parking',
          topic: 'console-parking',
          type: 'parcel',
          position: { transactionId: expect.stringMatching(/^\d+$/), globalPosition: expect.stringMatching(/^\d+$/) },
        });
        expect(message).not.toHaveProperty('payload');
        expect(message).not.toHaveProperty('headers');
      }
      const head = parked.find((message: any) => message.key === 'stuck' && message.status === 'waiting');
      expect(head).toMatchObject({ attempts: 1, errorMessage: expect.stringContaining('no route for stuck') });
      expect(head.errorMessage).not.toContain('hunter2');
      const idsOf = (key: string) => parked.filter((message: any) => message.key === key).map((message: any) => message.id as string);

      expect((await list('?group=console-parking&key=stuck')).body.map((message: any) => message.id)).toEqual(idsOf('stuck'));
      expect((await list('?status=waiting')).body).toHaveLength(4);
      expect((await list('?limit=2')).body.map((message: any) => message.id)).toEqual(idsOf('drop'));
      expect((await list('?group=console-audit')).body).toEqual([]);
      for (const query of [
        '?limit=0',
        '?limit=1001',
        '?limit=many',
        '?status=lost',
        '?key=',
        `?key=${'k'.repeat(1_001)}`,
        '?group=a%00b',
      ]) {
        const refused = await list(query);
        expect(refused.status, query).toBe(400);
        expect(refused.body.error, query).toMatchObject({
          code: 'POSTBOX_ERR_BAD_REQUEST',
          message: expect.stringMatching(/^Invalid query: /),
        });
      }
      const [count] = (await call(app, 'GET', '/ops/api/parked/counts')).body;
      expect(count).toEqual({
        group: 'console-parking',
        waiting: 4,
        followers: 4,
        deadLettered: 0,
        total: 8,
        oldestSeconds: expect.any(Number),
      });
      expect(count.oldestSeconds).toBeGreaterThanOrEqual(0);

      // By id: a follower's id releases its key from the first message on, in log order.
      failing.delete('stuck');
      const byId = await call(app, 'POST', `/ops/api/parked/${idsOf('stuck')[2]}/release`, {});
      expect(byId).toMatchObject({ status: 200, body: { released: { id: idsOf('stuck')[0], key: 'stuck', group: 'console-parking' } } });
      await waitFor(() => handled.filter((entry) => entry.startsWith('stuck:')).length === 3, 15_000, 'key stuck');
      expect(handled.filter((entry) => entry.startsWith('stuck:'))).toEqual(['stuck:0', 'stuck:1', 'stuck:2']);

      failing.delete('held');
      const byKey = await call(app, 'POST', '/ops/api/parked/release', { group: 'console-parking', key: 'held' });
      expect(byKey).toMatchObject({ status: 200, body: { released: { id: idsOf('held')[0], key: 'held' } } });
      await waitFor(() => handled.filter((entry) => entry.startsWith('held:')).length === 2, 15_000, 'key held');
      expect(handled.filter((entry) => entry.startsWith('held:'))).toEqual(['held:0', 'held:1']);

      const discarded = await call(app, 'POST', `/ops/api/parked/${idsOf('late')[0]}/discard`);
      expect(discarded).toMatchObject({ status: 200, body: { discarded: { id: idsOf('late')[0], key: 'late' } } });
      // By key, the first of the key goes: the one holding the rest back.
      const firstDropped = await call(app, 'POST', '/ops/api/parked/discard', { group: 'console-parking', key: 'drop' });
      expect(firstDropped).toMatchObject({ status: 200, body: { discarded: { id: idsOf('drop')[0], key: 'drop' } } });
      await waitFor(
        async () => (await list('?group=console-parking')).body.map((message: any) => message.id).join() === idsOf('drop')[1],
        15_000,
        'only the second message of key drop left',
      );
      const records = await postbox.deadLetters.list({ group: 'console-parking', status: 'discarded' });
      expect(records.map((letter) => (letter.payload as { seq: number }).seq + (letter.key as string)).sort()).toEqual(['0drop', '0late']);
      expect(handled.some((entry) => entry.startsWith('late:') || entry === 'drop:0')).toBe(false);

      for (const [url, body] of [
        ['/ops/api/parked/999999999/release', {}],
        ['/ops/api/parked/not-an-id/discard', undefined],
        [`/ops/api/parked/${idsOf('late')[0]}/discard`, undefined],
        ['/ops/api/parked/release', { group: 'console-parking', key: 'stuck' }],
        ['/ops/api/parked/discard', { group: 'console-parking', key: 'nothing-here' }],
      ] as const) {
        const missing = await call(app, 'POST', url, body);
        expect(missing.status, url).toBe(404);
        expect(missing.body.error, url).toMatchObject({ code: 'POSTBOX_ERR_PARKED_NOT_FOUND', message: expect.any(String) });
      }
      for (const body of [
        undefined,
        {},
        { group: 'console-parking' },
        { group: '', key: 'k' },
        { group: 'g', key: 'k'.repeat(1_001) },
        { group: 'g', key: 7 },
      ]) {
        for (const action of ['release', 'discard']) {
          const refused = await call(app, 'POST', `/ops/api/parked/${action}`, body);
          expect(refused.status, `${action} ${JSON.stringify(body)}`).toBe(400);
          expect(refused.body.error.code).toBe('POSTBOX_ERR_BAD_REQUEST');
        }
      }
    } finally {
      await parking.stop(2_000);
    }
  });

  it('lists messages waiting for their time with the time status, and cancels one', async () => {
    const later = new Date(Date.now() + 3_600_000);
    const [first, second] = await postbox.publish([
      { topic: 'console-later', type: 'remind', key: 'r1', payload: { n: 1 }, deliverAt: later },
      { topic: 'console-later', type: 'remind', key: 'r2', payload: { n: 2 }, deliverAt: new Date(later.getTime() + 60_000) },
    ]);
    const list = (query = '') => call(app, 'GET', `/ops/api/scheduled${query}`);
    const waiting = await list();
    expect(waiting.status).toBe(200);
    expect(waiting.body).toEqual([
      { id: first, topic: 'console-later', type: 'remind', key: 'r1', dueAt: later.toISOString(), createdAt: expect.any(String) },
      {
        id: second,
        topic: 'console-later',
        type: 'remind',
        key: 'r2',
        dueAt: new Date(later.getTime() + 60_000).toISOString(),
        createdAt: expect.any(String),
      },
    ]);
    expect((await list('?topic=console-later&key=r2')).body.map((message: any) => message.id)).toEqual([second]);
    expect((await list('?limit=1')).body.map((message: any) => message.id)).toEqual([first]);
    expect((await list('?topic=orders')).body).toEqual([]);
    for (const query of ['?limit=0', '?limit=1001', '?limit=-1', '?topic=', '?key=a%00b', `?topic=${'t'.repeat(201)}`]) {
      const refused = await list(query);
      expect(refused.status, query).toBe(400);
      expect(refused.body.error.code, query).toBe('POSTBOX_ERR_BAD_REQUEST');
    }
    expect((await call(app, 'GET', '/ops/api/time-status')).body).toMatchObject({
      scheduledMessages: 2,
      dueMessages: 0,
      nextDueAt: later.toISOString(),
    });

    const cancelled = await call(app, 'POST', `/ops/api/scheduled/${first}/cancel`, {});
    expect(cancelled).toMatchObject({ status: 200, body: { id: first, status: 'cancelled' } });
    expect((await list()).body.map((message: any) => message.id)).toEqual([second]);
    for (const id of [first, '0190b3d2-0000-7000-8000-000000000000']) {
      const missing = await call(app, 'POST', `/ops/api/scheduled/${id}/cancel`);
      expect(missing.status, id).toBe(404);
      expect(missing.body.error).toMatchObject({
        code: 'POSTBOX_ERR_SCHEDULED_MESSAGE_NOT_FOUND',
        message: expect.stringContaining('delivered already'),
      });
    }
    const malformed = await call(app, 'POST', '/ops/api/scheduled/not-a-uuid/cancel');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatchObject({ code: 'POSTBOX_ERR_BAD_OPTION', message: expect.stringContaining('UUID') });
    expect(await postbox.cancelScheduled(second as string)).toBe(true);
  });

  it('lists schedules, and pauses and resumes one', async () => {
    await postbox.schedule({
      name: 'console-nightly',
      cron: '0 3 * * *',
      timeZone: 'Europe/Paris',
      message: { topic: 'console-reports', type: 'nightly', key: 'report', payload: { secret: 'not listed' } },
    });
    const schedules = async () => (await call(app, 'GET', '/ops/api/schedules')).body;
    const [listed] = await schedules();
    expect(listed).toMatchObject({
      name: 'console-nightly',
      cron: '0 3 * * *',
      timeZone: 'Europe/Paris',
      status: 'active',
      missed: expect.any(String),
      message: { topic: 'console-reports', type: 'nightly', key: 'report' },
      lastTickAt: null,
    });
    expect(Date.parse(listed.nextTickAt)).toBeGreaterThan(Date.now());
    expect(listed.message).not.toHaveProperty('payload');

    const paused = await call(app, 'POST', '/ops/api/schedules/console-nightly/pause', {});
    expect(paused).toMatchObject({ status: 200, body: { name: 'console-nightly', status: 'paused' } });
    expect((await schedules())[0].status).toBe('paused');
    expect((await call(app, 'GET', '/ops/api/time-status')).body).toMatchObject({ activeSchedules: 0, pausedSchedules: 1 });
    const resumed = await call(app, 'POST', '/ops/api/schedules/console-nightly/resume');
    expect(resumed).toMatchObject({ status: 200, body: { name: 'console-nightly', status: 'active' } });
    expect(Date.parse(resumed.body.nextTickAt)).toBeGreaterThan(Date.now());
    expect((await postbox.schedules.get('console-nightly')).status).toBe('active');

    for (const action of ['pause', 'resume']) {
      const missing = await call(app, 'POST', `/ops/api/schedules/no-such-schedule/${action}`);
      expect(missing.status, action).toBe(404);
      expect(missing.body.error.code).toBe('POSTBOX_ERR_SCHEDULE_NOT_FOUND');
      const refused = await call(app, 'POST', `/ops/api/schedules/a%00b/${action}`);
      expect(refused.status, action).toBe(400);
      expect(refused.body.error.code).toBe('POSTBOX_ERR_BAD_REQUEST');
    }
    await postbox.schedules.delete('console-nightly');
  });

  it('shows projections with their lag, and rebuilds, pauses and resumes them', async () => {
    for (let cart = 1; cart <= 3; cart++) await store.append(`consolecart-${cart}`, [{ type: 'ItemAdded', data: { price: cart } }]);
    const projections = async () => (await call(app, 'GET', '/ops/api/projections')).body;
    await waitFor(
      async () => (await projections())[0]?.lagEvents === 0 && (await projections())[0]?.status === 'running',
      15_000,
      'the projection',
    );
    expect(await projections()).toEqual([
      expect.objectContaining({
        name: 'console-cart-totals',
        status: 'running',
        categories: ['consolecart'],
        activeVersion: 1,
        group: 'projection:console-cart-totals:v1',
        lagEvents: 0,
        failures: 0,
        lastError: null,
        rebuild: null,
      }),
    ]);

    const rebuild = await call(app, 'POST', '/ops/api/projections/console-cart-totals/rebuild', {});
    expect(rebuild).toMatchObject({ status: 200, body: { name: 'console-cart-totals', activeVersion: 1, rebuildVersion: 2 } });
    await waitFor(async () => (await projections())[0]?.activeVersion === 2, 20_000, 'the rebuilt version to be swapped in');
    const { rows } = await postbox.db.query<{ total: number }>('select sum(total)::int as total from console_cart_totals_v2');
    expect(rows[0]?.total).toBe(6);

    expect((await call(app, 'POST', '/ops/api/projections/console-cart-totals/pause')).body).toMatchObject({ paused: true });
    await waitFor(async () => (await projections())[0]?.status === 'stopped', 10_000, 'the pause');
    expect((await call(app, 'POST', '/ops/api/projections/console-cart-totals/resume')).body).toMatchObject({ paused: false });
    await waitFor(async () => (await projections())[0]?.status === 'running', 10_000, 'the resume');

    for (const action of ['rebuild', 'pause', 'resume']) {
      const missing = await call(app, 'POST', `/ops/api/projections/no-such-projection/${action}`);
      expect(missing.status, action).toBe(404);
      expect(missing.body.error.code).toBe('POSTBOX_ERR_PROJECTION_NOT_FOUND');
    }
  });

  it('names the session holding readers back: pid, database, application name, state and query', async () => {
    const held = await holdTransaction(database.url, [`select postbox.publish('console-held', 'held', '{}'::jsonb)`]);
    try {
      const answer = await call(app, 'GET', '/ops/api/holders?minSeconds=0');
      expect(answer.status).toBe(200);
      expect(answer.body.watermarkDelaySeconds).toBeGreaterThan(0);
      expect(answer.body.holders.find((holder: any) => holder.pid === held.pid)).toMatchObject({
        kind: 'session',
        pid: held.pid,
        database: database.name,
        user: 'postgres',
        applicationName: held.applicationName,
        clientAddress: '127.0.0.1',
        state: 'idle in transaction',
        query: expect.stringContaining('postbox.publish'),
        transactionId: expect.stringMatching(/^\d+$/),
        transactionSeconds: expect.any(Number),
      });
      await delay(1_100);
      const older = (await call(app, 'GET', '/ops/api/holders?minSeconds=1')).body.holders;
      expect(older.map((holder: any) => holder.pid)).toContain(held.pid);
      const none = (await call(app, 'GET', '/ops/api/holders?minSeconds=3600')).body.holders;
      expect(none.map((holder: any) => holder.pid)).not.toContain(held.pid);
    } finally {
      await held.end();
    }
    const after = (await call(app, 'GET', '/ops/api/holders?minSeconds=0')).body.holders;
    expect(after.map((holder: any) => holder.pid)).not.toContain(held.pid);
    for (const query of ['?minSeconds=-1', '?minSeconds=soon'])
      expect((await call(app, 'GET', `/ops/api/holders${query}`)).status, query).toBe(400);
  });

  it("shows the relay's statistics", async () => {
    await postbox.publish(['a', 'b', 'c'].map((key) => ({ topic: 'console-relayed', type: 'relayed', key, payload: { key } })));
    await waitFor(async () => (await relay.stats()).published >= 3 && (await relay.stats()).pending === 0, 20_000, 'the relay');
    const answer = await call(app, 'GET', '/ops/api/relay');
    expect(answer).toMatchObject({
      status: 200,
      body: { enabled: true, group: 'console-relay', state: 'active', pending: 0, published: 3, failed: 0, lastError: null },
    });
    expect(Date.parse(answer.body.lastPublishedAt)).toBeGreaterThan(0);
  });

  it('resets a group no process runs after a dry run, and refuses one that runs', async () => {
    const idle = postbox.consumer({ group: 'console-idle', topics: ['idle-topic'], handleMessage: async () => undefined });
    await idle.start();
    await postbox.publish(Array.from({ length: 4 }, (_, i) => ({ topic: 'idle-topic', type: 'x', payload: i })));
    await waitFor(async () => (await postbox.groupStatus('console-idle'))[0]?.lagMessages === 0, 10_000, 'the idle group');
    await idle.stop();
    const { rows } = await postbox.db.query<{ now: Date }>('select clock_timestamp() as now');
    const between = rows[0]?.now as Date;
    await postbox.publish(Array.from({ length: 5 }, (_, i) => ({ topic: 'idle-topic', type: 'x', payload: i })));
    await waitFor(async () => (await postbox.groupStatus('console-idle'))[0]?.lagMessages === 5, 10_000, 'five new messages');

    const reset = (body: unknown, group = 'console-idle') => call(app, 'POST', `/ops/api/groups/${encodeURIComponent(group)}/reset`, body);
    const dry = await reset({ to: 'earliest', dryRun: true });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({
      group: 'console-idle',
      to: 'earliest',
      dryRun: true,
      readAgain: 4,
      skipped: 0,
      heldBy: [],
      openDeadLetters: 0,
    });
    expect(dry.body.partitions).toEqual([
      {
        partition: 0,
        from: { transactionId: expect.stringMatching(/^\d+$/), globalPosition: expect.stringMatching(/^\d+$/) },
        to: { transactionId: '0', globalPosition: '0' },
        readAgain: 4,
        skipped: 0,
      },
    ]);
    expect((await postbox.groupStatus('console-idle'))[0]?.lagMessages).toBe(5);
    // From a time between the two batches: the group reads from there already.
    const byTime = await reset({ to: { time: between.toISOString() }, dryRun: true });
    expect(byTime.body).toMatchObject({ to: { time: between.toISOString() }, readAgain: 0, skipped: 0 });
    const future = await reset({ to: { time: new Date(Date.now() + 3_600_000).toISOString() }, dryRun: true });
    expect(future.status).toBe(400);
    expect(future.body.error.code).toBe('POSTBOX_ERR_BAD_OPTION');

    const done = await reset({ to: 'latest' });
    expect(done.body).toMatchObject({ group: 'console-idle', to: 'latest', dryRun: false, readAgain: 0, skipped: 5 });
    expect((await postbox.groupStatus('console-idle'))[0]?.lagMessages).toBe(0);

    const busy = await reset({ to: 'earliest' }, 'console-audit');
    expect(busy.status).toBe(409);
    expect(busy.body.error.code).toBe('POSTBOX_ERR_GROUP_BUSY');
    const busyDry = await reset({ to: 'earliest', dryRun: true }, 'console-audit');
    expect(busyDry.status).toBe(200);
    expect(busyDry.body.heldBy).toHaveLength(1);

    expect((await reset({ to: 'earliest' }, 'no-such-group')).body.error.code).toBe('POSTBOX_ERR_GROUP_NOT_FOUND');
    expect((await reset({ to: { messageId: '0190b3d2-0000-7000-8000-000000000000' } })).body.error.code).toBe(
      'POSTBOX_ERR_MESSAGE_NOT_FOUND',
    );
    for (const body of [
      undefined,
      {},
      { to: 'yesterday' },
      { to: { time: 'not a time' } },
      { to: { messageId: 'x' } },
      { to: 'latest', dryRun: 'yes' },
    ]) {
      const refused = await reset(body);
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(['POSTBOX_ERR_BAD_REQUEST', 'POSTBOX_ERR_BAD_OPTION']).toContain(refused.body.error.code);
    }
  });

  it('keeps lag and throughput samples in a bounded ring', async () => {
    await postbox.publish(Array.from({ length: 30 }, (_, i) => ({ topic: 'audit', type: 'audit', payload: i })));
    // The window is 1 s at one sample every 100 ms: at most 10 samples, whatever the run time.
    await delay(1_600);
    const { body } = await call(app, 'GET', '/ops/api/samples');
    expect(body).toMatchObject({ enabled: true, intervalMs: 100, windowMs: 1_000, capacity: 10, lastError: null });
    expect(body.samples).toHaveLength(10);
    const times = body.samples.map((sample: any) => Date.parse(sample.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(Date.now() - (times[0] as number)).toBeLessThan(3_000);
    for (const sample of body.samples) {
      expect(sample.seconds).toBeGreaterThan(0);
      expect(sample.appendedPerSecond).toBeCloseTo(sample.appended / sample.seconds, 6);
      expect(sample.groups.map((group: any) => group.group)).toEqual(expect.arrayContaining(['console-orders', 'console-audit']));
      expect(sample.groups.length).toBeLessThanOrEqual(10);
    }
  });

  it('counts exactly what became readable and what each group handled between samples', async () => {
    const sampler = new ThroughputSampler(postbox.db, { intervalMs: 1_000, windowMs: 60_000, maxGroups: 100 }, { warn: () => undefined });
    await sampler.sample();
    await postbox.publish(Array.from({ length: 7 }, (_, i) => ({ topic: 'audit', type: 'audit', key: `k${i}`, payload: i })));
    const totals = () => {
      const later = sampler.samples().slice(1);
      return {
        appended: later.reduce((sum, sample) => sum + (sample.appended ?? 0), 0),
        handled: later.reduce((sum, sample) => sum + (sample.groups.find((group) => group.group === 'console-audit')?.handled ?? 0), 0),
      };
    };
    // Another session of the server may hold the watermark for a moment: keep sampling until it moves on.
    await waitFor(
      async () => {
        await sampler.sample();
        return totals().appended >= 7 && totals().handled >= 7;
      },
      15_000,
      'seven messages readable and handled',
    );
    expect(totals()).toEqual({ appended: 7, handled: 7 });
    expect(sampler.samples()[0]).toMatchObject({ seconds: null, appended: null, appendedPerSecond: null });
    expect(sampler.samples()[0]?.groups.every((group) => group.handled === null)).toBe(true);
  });

  describe('the guard', () => {
    const token = 'console-secret-42';
    const others: FastifyInstance[] = [];
    let pendingId: string;
    let waitingId: string;
    /** What every guarded route is sent: a reset, and a key of a group that has nothing parked under it. */
    const anyBody = { to: 'earliest', group: 'not-there', key: 'not-there' };

    beforeAll(async () => {
      [waitingId] = (await postbox.publish({ topic: 'console-guarded', type: 'later', payload: {}, delayMs: 3_600_000 })) as [string];
      await postbox.publish({ topic: 'orders', type: 'order', key: 'guarded', payload: { id: 'guarded', poison: true } });
      await waitFor(
        async () => {
          const letters = await postbox.deadLetters.list({ group: 'console-orders' });
          pendingId = letters.find((letter) => (letter.payload as { id: string }).id === 'guarded')?.id as string;
          return pendingId !== undefined;
        },
        15_000,
        'a dead letter to guard',
      );
    });

    afterAll(async () => {
      for (const other of others) await other.close();
    });

    it('finds every route that changes state (so that the checks below cover them all)', () => {
      expect(
        changing(routes)
          .map((route) => `${route.method} ${route.url}`)
          .sort(),
      ).toEqual([
        'POST /ops/api/dead-letters/:id/discard',
        'POST /ops/api/dead-letters/:id/retry',
        'POST /ops/api/groups/:group/reset',
        'POST /ops/api/parked/:id/discard',
        'POST /ops/api/parked/:id/release',
        'POST /ops/api/parked/discard',
        'POST /ops/api/parked/release',
        'POST /ops/api/projections/:name/pause',
        'POST /ops/api/projections/:name/rebuild',
        'POST /ops/api/projections/:name/resume',
        'POST /ops/api/scheduled/:id/cancel',
        'POST /ops/api/schedules/:name/pause',
        'POST /ops/api/schedules/:name/resume',
      ]);
    });

    it('needs the bearer token on every route that changes state, before looking at anything else, and works with it', async () => {
      const guarded = await consoleApp({ postbox, token, host: '0.0.0.0', sampler: false });
      others.push(guarded.app);
      const wrong = [
        undefined,
        '',
        token,
        `Bearer ${token.slice(0, -1)}`,
        `Bearer ${token}x`,
        `Bearer  ${token}`,
        `bearer ${token}`,
        `Basic ${token}`,
      ];
      for (const { method, url } of changing(guarded.routes)) {
        for (const authorization of wrong) {
          for (const target of [pendingId, waitingId, 'console-cart-totals', 'console-idle', 'not-there']) {
            const answer = await call(
              guarded.app,
              method,
              fill(url, target),
              anyBody,
              authorization === undefined ? {} : { authorization },
            );
            expect(answer.status, `${method} ${url} ${authorization}`).toBe(401);
            expect(answer.body.error).toEqual({
              code: 'POSTBOX_ERR_UNAUTHORIZED',
              message: expect.stringContaining('Authorization: Bearer'),
            });
          }
        }
      }
      expect((await postbox.deadLetters.get(pendingId)).status).toBe('pending');
      expect((await postbox.listScheduled({ topic: 'console-guarded' })).map((message) => message.id)).toEqual([waitingId]);
      expect((await call(guarded.app, 'GET', '/ops/api/dead-letters')).status).toBe(200);
      expect((await call(guarded.app, 'GET', '/ops/api/console')).body).toMatchObject({ tokenRequired: true, readOnly: false });

      const authorization = `Bearer ${token}`;
      for (const { method, url } of changing(guarded.routes)) {
        // A scheduled message's id is a UUID: any other text is refused as malformed.
        const missing = url.includes('/scheduled/') ? '0190b3d2-0000-7000-8000-000000000000' : 'not-there';
        const answer = await call(guarded.app, method, fill(url, missing), { ...anyBody, dryRun: true }, { authorization });
        expect(answer.status, `${method} ${url}`).toBe(404);
      }
      const discarded = await call(guarded.app, 'POST', `/ops/api/dead-letters/${pendingId}/discard`, undefined, { authorization });
      expect(discarded).toMatchObject({ status: 200, body: { id: pendingId, status: 'discarded' } });
      const cancelled = await call(guarded.app, 'POST', `/ops/api/scheduled/${waitingId}/cancel`, undefined, { authorization });
      expect(cancelled).toMatchObject({ status: 200, body: { id: waitingId, status: 'cancelled' } });
    });

    it('answers 403 on every route that changes state of a read-only console, whatever the request carries', async () => {
      const readOnly = await consoleApp({ postbox, host: '0.0.0.0', readOnly: true, tokenName: 'OPS_TOKEN', sampler: false });
      others.push(readOnly.app);
      expect(changing(readOnly.routes)).toHaveLength(13);
      for (const { method, url } of changing(readOnly.routes)) {
        for (const headers of [{}, { authorization: `Bearer ${token}` }] as Record<string, string>[]) {
          const answer = await call(readOnly.app, method, fill(url, 'console-idle'), anyBody, headers);
          expect(answer.status, `${method} ${url}`).toBe(403);
          expect(answer.body.error).toMatchObject({
            code: 'POSTBOX_ERR_CONSOLE_READ_ONLY',
            message: expect.stringContaining('Set OPS_TOKEN'),
          });
        }
      }
      expect((await call(readOnly.app, 'GET', '/ops/api/groups')).status).toBe(200);
      expect((await call(readOnly.app, 'GET', '/ops/api/console')).body).toMatchObject({
        readOnly: true,
        tokenRequired: false,
        tokenName: 'OPS_TOKEN',
      });
    });

    it('refuses to register off loopback without a token, and checks its options', async () => {
      for (const host of ['0.0.0.0', '::', '[::]', '192.168.1.10', 'example.com', '127.0.0.1.nip.io']) {
        const refused = await registerConsole(Fastify(), { postbox, host, sampler: false }).catch((error: unknown) => error);
        expect(isPostboxError(refused, 'POSTBOX_ERR_CONSOLE_UNGUARDED'), host).toBe(true);
        expect((refused as Error).message).toContain(host);
      }
      for (const host of ['127.0.0.1', '::1', 'localhost']) {
        const fastify = Fastify();
        await registerConsole(fastify, { postbox, host, sampler: false });
        await fastify.close();
      }
      const refusals: [ConsoleOptions, string][] = [
        [{ postbox, token: 'short' }, 'token'],
        [{ postbox, token: 'has a space in it' }, 'token'],
        [{ postbox, prefix: 'ops' }, 'prefix'],
        [{ postbox, prefix: '/ops/' }, 'prefix'],
        [{ postbox, sampler: { intervalMs: 0 } }, 'sampler.intervalMs'],
        [{ postbox, sampler: { intervalMs: 1_000, windowMs: 10 } }, 'sampler.windowMs'],
        [{ postbox: {} as Postbox }, 'postbox'],
      ];
      for (const [options, option] of refusals) {
        const refused = await registerConsole(Fastify(), options).catch((error: unknown) => error);
        expect(isPostboxError(refused, 'POSTBOX_ERR_BAD_OPTION'), option).toBe(true);
        expect((refused as { details: { option: string } }).details.option).toBe(option);
      }
    });

    const outside = Object.values(networkInterfaces())
      .flat()
      .find((address) => address && address.family === 'IPv4' && !address.internal)?.address;

    it.skipIf(outside === undefined)(
      'without a token, refuses changes that arrive on a non-loopback address when the host was not given',
      async () => {
        const open = await consoleApp({ postbox, sampler: false });
        others.push(open.app);
        const base = await open.app.listen({ host: '0.0.0.0', port: 0 });
        const port = new URL(base).port;
        const far = await fetch(`http://${outside}:${port}/ops/api/dead-letters/999999999/retry`, { method: 'POST' });
        expect(far.status).toBe(403);
        expect(((await far.json()) as any).error.code).toBe('POSTBOX_ERR_CONSOLE_UNGUARDED');
        expect((await fetch(`http://${outside}:${port}/ops/api/groups`)).status).toBe(200);
        const near = await fetch(`http://127.0.0.1:${port}/ops/api/dead-letters/999999999/retry`, { method: 'POST' });
        expect(near.status).toBe(404);
      },
    );

    it('counts only loopback addresses as loopback', () => {
      for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1'])
        expect(isLoopbackHost(host), host).toBe(true);
      for (const host of [
        '0.0.0.0',
        '::',
        '[::]',
        '192.168.1.10',
        '10.0.0.1',
        'example.com',
        'localhost.example.com',
        '127.0.0.1.nip.io',
        '::ffff:10.0.0.1',
        '',
      ]) {
        expect(isLoopbackHost(host), host).toBe(false);
      }
    });
  });

  it('stops its sampler when Fastify closes', async () => {
    const warnings: unknown[] = [];
    const own = await createTestDatabase();
    const ownPostbox = await Postbox.create({ databaseUrl: own.url });
    const sampled = await consoleApp({
      postbox: ownPostbox,
      sampler: { intervalMs: 50, windowMs: 1_000 },
      logger: { warn: (...args: unknown[]) => warnings.push(args), error: () => undefined },
    });
    try {
      await waitFor(async () => (await call(sampled.app, 'GET', '/ops/api/samples')).body.samples.length >= 3, 5_000, 'samples');
    } finally {
      await sampled.app.close();
      await ownPostbox.close();
    }
    // A sampler still running would now fail on the closed database, and say so.
    await delay(300);
    expect(warnings).toEqual([]);
    await own.drop();
  });
});

describe('the console API on PGlite', () => {
  it('shows groups, dead letters, holders and samples of an embedded database', async () => {
    const postbox = await Postbox.create({ database: await pgliteDatabase(), migrate: 'auto' });
    const { app } = await consoleApp({ postbox, sampler: { intervalMs: 50, windowMs: 500 } });
    try {
      const consumer = postbox.consumer({
        group: 'embedded',
        topics: ['embedded'],
        pollIntervalMs: 20,
        handleMessage: async () => undefined,
      });
      await consumer.start();
      await postbox.publish([1, 2, 3].map((i) => ({ topic: 'embedded', type: 'x', payload: i })));
      await waitFor(async () => (await call(app, 'GET', '/ops/api/groups')).body[0]?.lagMessages === 0, 10_000, 'the group');
      await consumer.stop();
      expect((await call(app, 'GET', '/ops/api/groups')).body).toEqual([
        expect.objectContaining({ group: 'embedded', topics: ['embedded'] }),
      ]);
      expect((await call(app, 'GET', '/ops/api/dead-letters')).body).toEqual([]);
      expect((await call(app, 'GET', '/ops/api/projections')).body).toEqual([]);
      expect((await call(app, 'GET', '/ops/api/parked')).body).toEqual([]);
      expect((await call(app, 'GET', '/ops/api/parked/counts')).body).toEqual([]);
      expect((await call(app, 'GET', '/ops/api/schedules')).body).toEqual([]);
      const [later] = await postbox.publish({ topic: 'embedded-later', type: 'x', payload: 1, delayMs: 3_600_000 });
      expect((await call(app, 'GET', '/ops/api/scheduled')).body.map((message: any) => message.id)).toEqual([later]);
      expect((await call(app, 'POST', `/ops/api/scheduled/${later}/cancel`)).body).toEqual({ id: later, status: 'cancelled' });
      expect((await call(app, 'GET', '/ops/api/time-status')).body).toMatchObject({ scheduledMessages: 0, nextDueAt: null });
      expect((await call(app, 'GET', '/ops/api/holders')).body).toEqual({ watermarkDelaySeconds: expect.any(Number), holders: [] });
      await waitFor(async () => (await call(app, 'GET', '/ops/api/samples')).body.samples.length >= 2, 5_000, 'samples');
      const { samples } = (await call(app, 'GET', '/ops/api/samples')).body;
      expect(samples.at(-1).groups).toEqual([expect.objectContaining({ group: 'embedded', lagMessages: 0 })]);
      expect((await call(app, 'GET', '/ops/')).status).toBe(200);
    } finally {
      await app.close();
      await postbox.close();
      await postbox.db.close();
    }
  });
});
