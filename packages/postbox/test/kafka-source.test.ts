import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Admin, IHeaders, Kafka, KafkaMessage, Producer } from 'kafkajs';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDeadLetters } from '../src/deadletters/dead-letter-store.js';
import { ConfigError, ValidationError } from '../src/errors/postbox-error.js';
import type { Logger } from '../src/observability/logger.js';
import { PostboxMetrics } from '../src/observability/metrics.js';
import { Postbox } from '../src/postbox.js';
import type { RoutedMessage } from '../src/router/routed-message.js';
import { type RouteOptions, Router } from '../src/router/router.js';
import { Backpressure } from '../src/transports/kafka/kafka-backpressure.js';
import { createKafka } from '../src/transports/kafka/kafka-client.js';
import { Coalescer } from '../src/transports/kafka/kafka-coalesce.js';
import { decodeKafkaMessage, rawPreview } from '../src/transports/kafka/kafka-decode.js';
import { kafkaSource } from '../src/transports/kafka/kafka-source.js';
import { type KafkaSourceOptions, loadKafkaSourceConfig, resolveKafkaSourceOptions } from '../src/transports/kafka/kafka-source-config.js';
import { type MockCluster, startMockCluster } from './support/kafka-mock.js';
import { createTestDatabase, type TestDatabase, withAdmin } from './support/postgres.js';
import { delay, waitFor } from './support/wait.js';

/** Short timings so that rebalances, retries and restarts take milliseconds, not seconds. */
const fast = {
  sessionTimeoutMs: 6_000,
  heartbeatIntervalMs: 300,
  maxWaitTimeMs: 100,
  initialRetryDelayMs: 50,
  maxRetryDelayMs: 400,
} satisfies Partial<KafkaSourceOptions>;

const fastRetry = { initialDelayMs: 5, maxDelayMs: 20 };

interface Outgoing {
  value: Buffer | string | null;
  key?: string;
  partition?: number;
  headers?: IHeaders;
}

function json(value: unknown): string {
  return JSON.stringify(value);
}

/** The pino lines a logSink caught, parsed. */
function entries(lines: string[]): Record<string, any>[] {
  return lines.map((line) => JSON.parse(line));
}

function logSink(): { lines: string[]; logger: Logger } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(String(chunk));
      callback();
    },
  });
  return { lines, logger: pino({ level: 'debug' }, stream) };
}

describe('Kafka source', () => {
  let database: TestDatabase;
  let postbox: Postbox;
  let cluster: MockCluster;
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;
  const routers: Router[] = [];
  const extraPostboxes: Postbox[] = [];

  beforeAll(async () => {
    [database, cluster] = await Promise.all([createTestDatabase(), startMockCluster()]);
    postbox = await Postbox.create({ databaseUrl: database.url });
    kafka = createKafka({ brokers: cluster.brokers });
    admin = kafka.admin();
    producer = kafka.producer();
    await Promise.all([admin.connect(), producer.connect()]);
  });

  afterAll(async () => {
    await Promise.all(routers.map((router) => router.stop(3_000)));
    await Promise.all([admin?.disconnect(), producer?.disconnect()]);
    await Promise.all([postbox, ...extraPostboxes].map((box) => box?.close(2_000)));
    await Promise.all([database?.drop(), cluster?.stop()]);
  });

  async function produce(topic: string, messages: Outgoing[]): Promise<void> {
    await producer.send({ topic, acks: -1, messages });
  }

  /** The committed offset of each partition of the group, as numbers (-1: none). */
  async function committed(groupId: string, topic: string, on: Admin = admin): Promise<Map<number, number>> {
    const [result] = await on.fetchOffsets({ groupId, topics: [topic] });
    return new Map((result?.partitions ?? []).map((entry) => [entry.partition, Number(entry.offset)]));
  }

  async function totalCommitted(groupId: string, topic: string, on: Admin = admin): Promise<number> {
    let total = 0;
    for (const offset of (await committed(groupId, topic, on)).values()) total += Math.max(offset, 0);
    return total;
  }

  async function startRouter<P>(
    route: RouteOptions<P>,
    source: Omit<KafkaSourceOptions, 'kafka'>,
    on: { postbox?: Postbox; metrics?: PostboxMetrics } = {},
  ): Promise<Router> {
    const router = new Router(on.postbox ?? postbox, { metrics: on.metrics });
    router.addHandler({
      ...route,
      source: kafkaSource({ kafka: { brokers: cluster.brokers }, ...fast, metrics: on.metrics, ...source }),
    });
    routers.push(router);
    await router.start();
    return router;
  }

  it('starts a new group at the earliest message or at the latest, and maps each record', async () => {
    await cluster.createTopic('start-from', 4);
    const before = Array.from({ length: 20 }, (_, n) => ({ key: `k${n % 5}`, value: json({ phase: 'before', n }) }));
    await produce('start-from', before);

    const early: RoutedMessage<{ phase: string; n: number }>[] = [];
    const late: RoutedMessage<{ phase: string; n: number }>[] = [];
    const handle = (into: typeof early) => async (message: RoutedMessage<{ phase: string; n: number }>) => {
      into.push(message);
    };
    await Promise.all([
      startRouter({ name: 'early', topics: ['start-from'], handle: handle(early) }, { startFrom: 'earliest' }),
      startRouter({ name: 'late', topics: ['start-from'], handle: handle(late) }, { startFrom: 'latest' }),
    ]);

    const after: Outgoing[] = Array.from({ length: 20 }, (_, n) => ({ key: `k${n % 5}`, value: json({ phase: 'after', n }) }));
    after[0] = {
      key: 'k0',
      value: json({ phase: 'after', n: 0 }),
      headers: { 'message-id': 'order-0001', 'message-type': 'order.created', 'trace-id': 'trace-1', tenant: 'acme' },
    };
    const producedAt = Date.now();
    await produce('start-from', after);

    await waitFor(() => early.length >= 40 && late.length >= 20, 15_000, 'both groups to catch up');
    await delay(300);
    expect(early).toHaveLength(40);
    expect(late).toHaveLength(20);
    expect(late.every((message) => message.payload.phase === 'after')).toBe(true);
    expect(early.filter((message) => message.payload.phase === 'before')).toHaveLength(20);

    const tagged = late.find((message) => message.id === 'order-0001');
    expect(tagged).toMatchObject({
      topic: 'start-from',
      type: 'order.created',
      key: 'k0',
      payload: { phase: 'after', n: 0 },
      headers: { traceId: 'trace-1', tenant: 'acme' },
      source: { kind: 'kafka' },
    });
    expect(Math.abs((tagged?.createdAt.getTime() ?? 0) - producedAt)).toBeLessThan(5_000);
    const plain = late.find((message) => message.payload.n === 1);
    expect(plain?.id).toMatch(/^kafka:start-from:[0-3]:\d+$/);
    expect(plain?.type).toBe('');
    const source = plain?.source as { kind: 'kafka'; partition: number; offset: string };
    expect(plain?.id).toBe(`kafka:start-from:${source.partition}:${source.offset}`);

    // Each key lives in one partition and is handled in offset order.
    for (const key of ['k0', 'k1', 'k2', 'k3', 'k4']) {
      const sources = early.flatMap((message) => (message.key === key && message.source.kind === 'kafka' ? [message.source] : []));
      expect(new Set(sources.map((source) => source.partition)).size).toBe(1);
      const offsets = sources.map((source) => Number(source.offset));
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    }
    expect(await totalCommitted('early', 'start-from')).toBe(40);
  });

  it('commits an offset only after its message was handled, and restarts the consumer until the handler recovers', async () => {
    await cluster.createTopic('commits', 1);
    await produce(
      'commits',
      Array.from({ length: 10 }, (_, n) => ({ value: json({ n }) })),
    );
    let failing = true;
    let attemptsAtFive = 0;
    const handled: number[] = [];
    await startRouter(
      {
        name: 'commits',
        topics: ['commits'],
        retry: { maxAttempts: 1 },
        deadLetter: false,
        handle: async (message: RoutedMessage<{ n: number }>) => {
          if (message.payload.n === 5 && failing) {
            attemptsAtFive += 1;
            throw new Error('handler down');
          }
          handled.push(message.payload.n);
        },
      },
      { maxBatchSize: 1, retries: 1 },
    );

    await waitFor(() => attemptsAtFive >= 1, 15_000, 'the first failure');
    for (let check = 0; check < 3; check++) {
      expect((await committed('commits', 'commits')).get(0)).toBe(5);
      await delay(20);
    }
    // With retries: 1 a consumer tries twice; a third attempt means KafkaJS restarted it and it tried again.
    await waitFor(() => attemptsAtFive >= 3, 20_000, 'the failing message to be tried again after a restart');
    failing = false;
    expect(handled).toEqual([0, 1, 2, 3, 4]);
    expect((await committed('commits', 'commits')).get(0)).toBe(5);

    await waitFor(() => handled.length >= 10, 15_000, 'every message after the handler recovered');
    await waitFor(async () => (await committed('commits', 'commits')).get(0) === 10, 5_000, 'the final commit');
    expect(handled).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('loses and duplicates nothing when the database goes down during consumption', async () => {
    const own = await createTestDatabase();
    const { lines, logger } = logSink();
    const outagePostbox = await Postbox.create({ databaseUrl: own.url, pool: { max: 4 } });
    try {
      await outagePostbox.db.query('create table sink (message_id text not null, n int not null)');
      await cluster.createTopic('outage', 4);
      const router = await startRouter<{ n: number }>(
        {
          name: 'outage',
          topics: ['outage'],
          transactional: true,
          retry: { maxAttempts: 2, ...fastRetry },
          handle: async (message: RoutedMessage<{ n: number }>, context) => {
            await context.tx?.query('insert into sink (message_id, n) values ($1, $2)', [message.id, message.payload.n]);
          },
        },
        { logger, maxBatchSize: 10 },
        { postbox: outagePostbox },
      );
      const batch = (from: number) =>
        Array.from({ length: 50 }, (_, k) => ({
          key: `key-${(from + k) % 7}`,
          value: json({ n: from + k }),
          headers: { 'message-id': `m-${from + k}` },
        }));
      const rows = async () => Number((await queryAt(own.url, 'select count(*)::int as n from sink'))[0]?.n);

      await produce('outage', batch(0));
      await waitFor(async () => (await rows()) === 50, 15_000, 'the first 50 rows');
      await waitFor(async () => (await totalCommitted('outage', 'outage')) === 50, 5_000, 'the first commits');

      await withAdmin(async (client) => {
        await client.query(`alter database ${own.name} allow_connections false`);
        await client.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [own.name]);
      });
      await produce('outage', batch(50));
      await waitFor(
        () => lines.filter((line) => line.includes('delivery failed')).length >= 3,
        20_000,
        'deliveries to fail while the database is down',
      );
      for (let check = 0; check < 5; check++) {
        expect(await totalCommitted('outage', 'outage')).toBe(50);
        await delay(100);
      }

      await withAdmin((client) => client.query(`alter database ${own.name} allow_connections true`));
      await waitFor(async () => (await rows()) >= 100, 30_000, 'all 100 rows after the database came back');
      await waitFor(async () => (await totalCommitted('outage', 'outage')) === 100, 10_000, 'every offset committed');
      await router.stop(5_000);

      const counts = await queryAt(
        own.url,
        'select count(*)::int as total, count(distinct message_id)::int as distinct_ids, min(n) as low, max(n) as high from sink',
      );
      expect(counts[0]).toEqual({ total: 100, distinct_ids: 100, low: 0, high: 99 });
      expect(await listDeadLetters(outagePostbox.db, { group: 'outage' })).toEqual([]);
    } finally {
      await withAdmin((client) => client.query(`alter database ${own.name} allow_connections true`));
      await outagePostbox.close(2_000);
      await own.drop();
    }
  });

  it('sends undecodable records to dead letters with their reason and handles the good ones around them', async () => {
    await cluster.createTopic('poison', 1);
    const good = (n: number): Outgoing => ({ value: json({ n }), headers: { 'message-id': `good-${n}` } });
    const notUtf8 = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0xc3]), randomBytes(60)]);
    const oversized = json({ pad: 'x'.repeat(6_000) });
    await produce('poison', [
      good(0),
      { value: notUtf8, headers: { 'message-id': 'bad-bytes' } },
      good(1),
      { value: '{"n": 1, "tex', headers: { 'message-id': 'bad-truncated' } },
      good(2),
      { value: Buffer.alloc(0), headers: { 'message-id': 'bad-empty' } },
      good(3),
      { value: oversized, headers: { 'message-id': 'bad-oversized' } },
      good(4),
      { value: '{"text": "nul \\u0000 here"}', headers: { 'message-id': 'bad-nul' } },
      good(5),
    ]);
    const handled: string[] = [];
    await startRouter(
      {
        name: 'poison',
        topics: ['poison'],
        transactional: true,
        retry: fastRetry,
        handleBatch: async (messages) => {
          for (const message of messages) handled.push(message.id);
        },
      },
      { maxMessageBytes: 2_048 },
    );
    await waitFor(async () => (await totalCommitted('poison', 'poison')) === 11, 15_000, 'every offset committed');
    expect(handled.sort()).toEqual(['good-0', 'good-1', 'good-2', 'good-3', 'good-4', 'good-5']);

    const letters = await listDeadLetters(postbox.db, { group: 'poison' });
    const byId = new Map(letters.map((letter) => [letter.messageId, letter]));
    expect([...byId.keys()].sort()).toEqual(['bad-bytes', 'bad-empty', 'bad-nul', 'bad-oversized', 'bad-truncated']);
    for (const letter of letters) {
      expect(letter).toMatchObject({ source: 'kafka', topic: 'poison', errorCode: 'POSTBOX_ERR_DECODE', attempts: 0, payload: null });
    }
    expect(byId.get('bad-bytes')?.errorMessage).toMatch(/^Kafka message poison\/0\/1 is not valid UTF-8/);
    expect(byId.get('bad-bytes')?.rawPayload).toBe(`base64:${notUtf8.toString('base64')}`);
    expect(byId.get('bad-bytes')?.sourcePosition).toBe('0/1');
    expect(byId.get('bad-truncated')?.errorMessage).toMatch(/is not valid JSON/);
    expect(byId.get('bad-truncated')?.rawPayload).toBe('{"n": 1, "tex');
    expect(byId.get('bad-empty')?.errorMessage).toMatch(/has an empty value/);
    expect(byId.get('bad-empty')?.rawPayload).toBe('');
    expect(byId.get('bad-oversized')?.errorMessage).toContain(`is ${Buffer.byteLength(oversized)} bytes, over maxMessageBytes (2048)`);
    expect(byId.get('bad-oversized')?.rawPayload).toBe(oversized.slice(0, 4_096));
    expect(byId.get('bad-nul')?.errorMessage).toMatch(/cannot store/);
  });

  it('shares the partitions between two routers of one group, handling every message once', async () => {
    await cluster.createTopic('shared', 4);
    await postbox.db.query('create table shared_sink (message_id text not null, handler text not null, partition int not null)');
    const second = await Postbox.create({ databaseUrl: database.url });
    extraPostboxes.push(second);
    const route = (name: string): RouteOptions<{ n: number }> => ({
      name,
      group: 'shared-group',
      topics: ['shared'],
      transactional: true,
      handleBatch: async (messages, context) => {
        await context.tx?.query(
          'insert into shared_sink (message_id, handler, partition) select * from unnest($1::text[], $2::text[], $3::int[])',
          [messages.map((m) => m.id), messages.map(() => name), messages.map((m) => (m.source.kind === 'kafka' ? m.source.partition : -1))],
        );
      },
    });
    const logs = { a: logSink(), b: logSink() };
    await startRouter(route('a'), { logger: logs.a.logger });
    await startRouter(route('b'), { logger: logs.b.logger }, { postbox: second });
    const joined = 'joined the Kafka consumer group';
    /** The partitions of each member's latest join: when they split the four between them, the group is settled. */
    const latestAssignment = (lines: string[]) =>
      (entries(lines).findLast((entry) => entry.msg === joined)?.assignment?.shared ?? []) as number[];
    /** What each member saw, for the failure message: the mock needs a few seconds per rebalance, and a slow machine can take several. */
    const groupHistory = () =>
      Object.entries(logs)
        .map(([member, sink]) => {
          const seen = entries(sink.lines).filter((entry) => entry.level >= 40 || entry.msg === joined);
          return `${member}: ${seen.map((entry) => `${new Date(entry.time).toISOString()} ${entry.msg} ${JSON.stringify(entry.assignment ?? entry.err?.message ?? '')}`).join('; ')}`;
        })
        .join('\n');
    await waitFor(
      () => {
        const a = latestAssignment(logs.a.lines);
        const b = latestAssignment(logs.b.lines);
        return a.length > 0 && b.length > 0 && [...a, ...b].sort().join() === '0,1,2,3';
      },
      45_000,
      'both members to hold partitions',
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${groupHistory()}`);
    });

    await produce(
      'shared',
      Array.from({ length: 400 }, (_, n) => ({ key: `customer-${n % 40}`, value: json({ n }), headers: { 'message-id': `s-${n}` } })),
    );
    const count = async () => Number((await postbox.db.query<{ n: number }>('select count(*)::int as n from shared_sink')).rows[0]?.n);
    await waitFor(async () => (await count()) >= 400, 30_000, 'all 400 messages');
    await delay(300);
    const { rows } = await postbox.db.query<{ total: number; distinct_ids: number }>(
      'select count(*)::int as total, count(distinct message_id)::int as distinct_ids from shared_sink',
    );
    expect(rows[0]).toEqual({ total: 400, distinct_ids: 400 });
    const owners = await postbox.db.query<{ handler: string; partitions: number[] }>(
      'select handler, array_agg(distinct partition order by partition) as partitions from shared_sink group by handler order by handler',
    );
    expect(owners.rows.map((row) => row.handler)).toEqual(['a', 'b']);
    const all = owners.rows.flatMap((row) => row.partitions).sort();
    expect(all).toEqual([0, 1, 2, 3]);
  }, 120_000);

  /**
   * A mock cluster of its own whose topic holds `count` messages: an injected error goes to the next
   * request of its kind from any client, so it must not meet the other tests' consumers.
   */
  async function isolatedCluster(topic: string, count: number): Promise<MockCluster> {
    const own = await startMockCluster();
    try {
      await own.createTopic(topic, 2);
      const ownProducer = createKafka({ brokers: own.brokers }).producer();
      await ownProducer.connect();
      await ownProducer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: count }, (_, n) => ({ key: `k-${n}`, value: json({ n }) })),
      });
      await ownProducer.disconnect();
      return own;
    } catch (error) {
      await own.stop();
      throw error;
    }
  }

  it('replaces a consumer stopped by an error KafkaJS does not retry, reporting unhealthy until it rejoins, and loses nothing', async () => {
    const own = await isolatedCluster('rejected', 20);
    const router = new Router(postbox);
    const ownAdmin = createKafka({ brokers: own.brokers }).admin();
    try {
      // SyncGroup (API key 14) answered INVALID_REQUEST (42), which KafkaJS never retries, three times in a row.
      await own.fail(14, 42, 3);

      const { lines, logger } = logSink();
      const handled: number[] = [];
      router.addHandler({
        name: 'rejected',
        topics: ['rejected'],
        handle: async (message: RoutedMessage<{ n: number }>) => {
          handled.push(message.payload.n);
        },
        source: kafkaSource({
          kafka: { brokers: own.brokers },
          ...fast,
          // The mock holds each rebalance for the session timeout less a second.
          sessionTimeoutMs: 3_000,
          restartDelayMs: 300,
          maxRestartDelayMs: 5_000,
          logger,
        }),
      });
      const seen: string[] = [];
      const watch = setInterval(() => {
        router.health().then(
          (checks) => seen.push(...checks.map((check) => `${check.status}: ${check.detail ?? ''}`)),
          () => undefined,
        );
      }, 20);
      try {
        await router.start();
        await waitFor(() => handled.length >= 20, 30_000, 'all 20 messages after the restarts');
      } finally {
        clearInterval(watch);
      }

      expect([...handled].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, n) => n));
      const restarts = entries(lines).filter((entry) => entry.msg.startsWith('Kafka consumer stopped on an error KafkaJS does not retry'));
      expect(restarts).toHaveLength(3);
      expect(restarts.map((entry) => entry.failedRestarts)).toEqual([1, 2, 3]);
      for (const entry of restarts) expect(entry.err.message).toMatch(/request being malformed/);
      const delays = restarts.map((entry) => entry.restartInMs as number);
      expect(delays[0]).toBeGreaterThanOrEqual(240);
      expect(delays[1]).toBeGreaterThan(delays[0] as number);
      expect(delays[2]).toBeGreaterThan(delays[1] as number);
      expect(seen.some((entry) => /^unhealthy: restarting after an error KafkaJS does not retry: .*malformed/.test(entry))).toBe(true);
      expect(await router.health()).toEqual([{ name: 'kafka-source:rejected', status: 'healthy' }]);
      await ownAdmin.connect();
      await waitFor(
        async () => (await totalCommitted('rejected', 'rejected', ownAdmin)) === 20,
        5_000,
        'offsets committed up to all 20 messages',
      );
    } finally {
      await router.stop(3_000);
      await ownAdmin.disconnect();
      await own.stop();
    }
  }, 60_000);

  it('stops at once while it waits to replace a crashed consumer, and starts none after', async () => {
    const own = await isolatedCluster('rejected-stop', 5);
    const { lines, logger } = logSink();
    const router = new Router(postbox);
    try {
      await own.fail(14, 42, 1);
      router.addHandler({
        name: 'rejected-stop',
        topics: ['rejected-stop'],
        handle: async () => undefined,
        source: kafkaSource({ kafka: { brokers: own.brokers }, ...fast, restartDelayMs: 60_000, logger }),
      });
      await router.start();
      const messages = () => entries(lines).map((entry) => entry.msg as string);
      await waitFor(() => messages().some((msg) => msg.startsWith('Kafka consumer stopped on an error')), 15_000, 'the crash');
      const began = Date.now();
      await router.stop(5_000);
      expect(Date.now() - began).toBeLessThan(2_000);
      expect(messages()).toContain('Kafka source stopped while waiting to restart its consumer');
      await delay(500);
      expect(messages()).not.toContain('joined the Kafka consumer group');
    } finally {
      await router.stop(1_000);
      await own.stop();
    }
  }, 30_000);

  it('stops gracefully: the delivery in hand finishes and commits, or is given up uncommitted once the deadline passes', async () => {
    await cluster.createTopic('graceful', 1);
    await produce(
      'graceful',
      Array.from({ length: 4 }, (_, n) => ({ value: json({ n }) })),
    );
    const finished: number[] = [];
    let inHand = false;
    let waiting = false;
    let abortSeen = false;
    const [finishing, abandoning] = await Promise.all([
      startRouter<{ n: number }>(
        {
          name: 'graceful-finish',
          topics: ['graceful'],
          handleBatch: async (messages) => {
            inHand = true;
            await delay(400);
            finished.push(...messages.map((message) => message.payload.n));
          },
        },
        { maxBatchSize: 2 },
      ),
      startRouter<{ n: number }>(
        {
          name: 'graceful-abandon',
          topics: ['graceful'],
          retry: { maxAttempts: 1 },
          deadLetter: false,
          handle: (_message, context) =>
            new Promise<void>((_resolve, reject) => {
              waiting = true;
              context.signal.addEventListener('abort', () => {
                abortSeen = true;
                reject(context.signal.reason);
              });
            }),
        },
        {},
      ),
    ]);
    await waitFor(() => inHand && waiting, 10_000, 'a delivery in hand in both groups');
    const [finishedInTime, abandonedInTime] = await Promise.all([finishing.stop(5_000), abandoning.stop(300)]);
    expect(finishedInTime).toBe(true);
    expect(finished).toEqual([0, 1]);
    expect((await committed('graceful-finish', 'graceful')).get(0)).toBe(2);
    expect(abandonedInTime).toBe(false);
    expect(abortSeen).toBe(true);
    expect((await committed('graceful-abandon', 'graceful')).get(0)).toBe(-1);
  });

  it('keeps the SASL password out of its logs and errors', async () => {
    const password = 'Sup3r-Secret-pw';
    const { lines, logger } = logSink();
    const router = new Router(postbox);
    router.addHandler({
      name: 'secured',
      topics: ['secured'],
      handle: async () => undefined,
      source: kafkaSource({ kafka: { brokers: cluster.brokers, sasl: { mechanism: 'plain', username: 'u', password } }, logger, ...fast }),
    });
    const failure = await router.start().then(
      () => undefined,
      (error: unknown) => error,
    );
    routers.push(router);
    expect(failure).toBeInstanceOf(Error);
    expect(lines.length).toBeGreaterThan(0);
    expect(`${String(failure)} ${JSON.stringify(failure)} ${lines.join('')}`).not.toContain(password);
  });

  it('reports kafka_consumer_lag per partition', async () => {
    await cluster.createTopic('lag', 4);
    for (const partition of [0, 1, 2, 3]) {
      await produce(
        'lag',
        Array.from({ length: 10 }, (_, n) => ({ partition, value: json({ partition, n }) })),
      );
    }
    const metrics = new PostboxMetrics();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let blocked = false;
    const router = await startRouter(
      {
        name: 'lag',
        topics: ['lag'],
        handleBatch: async (messages: RoutedMessage<{ partition: number; n: number }>[]) => {
          // The second half of partition 0 waits, so its lag stays at 5 while the others catch up.
          if (messages.some((message) => message.payload.partition === 0 && message.payload.n >= 5)) {
            blocked = true;
            await gate;
          }
        },
      },
      { maxBatchSize: 5 },
      { metrics },
    );
    const lagLine = (partition: number, value: number) => `kafka_consumer_lag{group="lag",topic="lag",partition="${partition}"} ${value}`;
    const shows = async (expected: [number, number][]) => {
      const text = await metrics.registry.metrics();
      return expected.every(([partition, value]) => text.includes(lagLine(partition, value)));
    };
    await waitFor(
      async () =>
        blocked &&
        (await shows([
          [0, 5],
          [1, 0],
          [2, 0],
          [3, 0],
        ])),
      10_000,
      'partition 0 held at a lag of 5 and the others caught up',
    );
    release();
    await waitFor(
      () =>
        shows([
          [0, 0],
          [1, 0],
          [2, 0],
          [3, 0],
        ]),
      10_000,
      'every partition caught up',
    );
    await router.stop(3_000);
    expect(await metrics.registry.metrics()).not.toContain('kafka_consumer_lag{');
  });
});

describe('Kafka records as routed messages', () => {
  const limits = { maxMessageBytes: 100, rawPreviewBytes: 8 };
  const record = (value: Buffer | null, extra: { key?: Buffer; headers?: IHeaders } = {}): KafkaMessage =>
    ({ key: null, value, timestamp: '1700000000000', attributes: 0, offset: '42', headers: {}, ...extra }) as KafkaMessage;

  it('keeps ids, keys and header values storable in PostgreSQL', () => {
    const message = decodeKafkaMessage(
      't',
      3,
      record(Buffer.from('{"ok":true}'), { key: Buffer.from('a\u0000b'), headers: { 'message-id': 'x\u0000', note: 'n\u0000' } }),
      limits,
    );
    expect(message).toMatchObject({ id: 'x\uFFFD', key: 'a\uFFFDb', headers: { note: 'n\uFFFD' }, payload: { ok: true } });
    expect(message.createdAt.toISOString()).toBe('2023-11-14T22:13:20.000Z');
    expect(message.decodeError).toBeUndefined();
  });

  it('flags JSON strings jsonb refuses, and keeps a readable head of bad values', () => {
    expect(decodeKafkaMessage('t', 0, record(Buffer.from('["\\ud800"]')), limits).decodeError?.message).toMatch(/cannot store/);
    expect(decodeKafkaMessage('t', 0, record(Buffer.from('["\\\\u0000"]')), limits).decodeError).toBeUndefined();
    expect(decodeKafkaMessage('t', 0, record(null), limits).decodeError?.message).toMatch(/empty value/);
    expect(rawPreview(Buffer.from('ééééé'), 5)).toBe('éé');
    expect(rawPreview(Buffer.from([0x61, 0x00, 0x62]), 8)).toBe('base64:YQBi');
  });
});

describe('Kafka source backpressure', () => {
  it('pauses partitions above the high-water mark and resumes them at half; slow deliveries pause their own', () => {
    const events: string[] = [];
    const gate = new Backpressure(100, {
      pause: (p) => events.push(`pause ${p.topic}/${p.partition}`),
      resume: (p) => events.push(`resume ${p.topic}/${p.partition}`),
    });
    gate.admit({ topic: 't', partition: 0 }, 60);
    gate.admit({ topic: 't', partition: 1 }, 60);
    gate.admit({ topic: 't', partition: 2 }, 10);
    expect(events).toEqual(['pause t/1', 'pause t/2']);
    gate.slow({ topic: 't', partition: 1 }, true);
    gate.release(60);
    expect(events).toHaveLength(2);
    gate.release(20);
    expect(events).toEqual(['pause t/1', 'pause t/2', 'resume t/2']);
    expect(gate.paused()).toEqual([{ topic: 't', partition: 1 }]);
    gate.slow({ topic: 't', partition: 1 }, false);
    expect(events.at(-1)).toBe('resume t/1');
    expect(gate.paused()).toEqual([]);
    expect(gate.inFlight).toBe(50);
    gate.slow({ topic: 't', partition: 3 }, true);
    gate.slow({ topic: 't', partition: 3 }, false);
    expect(events.slice(-2)).toEqual(['pause t/3', 'resume t/3']);
  });
});

describe('Kafka source coalescing', () => {
  const tick = () => new Promise((resolve) => setImmediate(resolve));

  it('delivers what concurrent workers hand in together, once every worker inside has handed in or left', async () => {
    const deliveries: string[][] = [];
    const coalescer = new Coalescer<string>(10, async (items) => {
      deliveries.push(items);
    });
    coalescer.enter();
    coalescer.enter();
    coalescer.enter();
    const a = coalescer.submit('a', 2);
    const b = coalescer.submit('b', 2);
    await tick();
    await tick();
    expect(deliveries).toEqual([]);
    coalescer.leave();
    await Promise.all([a, b]);
    expect(deliveries).toEqual([['a', 'b']]);
  });

  it('starts a delivery rather than pass the size limit, and fails every worker of a failed delivery', async () => {
    const deliveries: string[][] = [];
    const coalescer = new Coalescer<string>(5, async (items) => {
      deliveries.push(items);
      if (items.includes('bad')) throw new Error('database down');
    });
    coalescer.enter();
    coalescer.enter();
    const first = coalescer.submit('x', 3);
    const second = coalescer.submit('y', 3);
    await first;
    expect(deliveries).toEqual([['x']]);
    coalescer.leave();
    await second;
    expect(deliveries).toEqual([['x'], ['y']]);
    coalescer.enter();
    const bad = coalescer.submit('bad', 1);
    const good = coalescer.submit('good', 1);
    await expect(bad).rejects.toThrow('database down');
    await expect(good).rejects.toThrow('database down');
  });
});

describe('Kafka source configuration', () => {
  function configError(env: Record<string, string>): ConfigError {
    try {
      loadKafkaSourceConfig(env);
    } catch (error) {
      if (error instanceof ConfigError) return error;
      throw error;
    }
    throw new Error('expected a ConfigError');
  }

  it('reads the seed variables', () => {
    expect(
      loadKafkaSourceConfig({
        KAFKA_BROKERS: 'kafka-1:9092, kafka-2:9092',
        KAFKA_TOPIC: 'todo-history-events',
        KAFKA_GROUP_ID: 'todo-consumer-group-go',
        KAFKA_CLIENT_ID: 'history',
        KAFKA_START_FROM: 'Latest',
        KAFKA_SSL: 'true',
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
        KAFKA_SASL_USERNAME: 'history',
        KAFKA_SASL_PASSWORD: 'pw',
      }),
    ).toEqual({
      kafka: {
        brokers: ['kafka-1:9092', 'kafka-2:9092'],
        clientId: 'history',
        ssl: true,
        sasl: { mechanism: 'scram-sha-512', username: 'history', password: 'pw' },
      },
      topics: ['todo-history-events'],
      groupId: 'todo-consumer-group-go',
      startFrom: 'latest',
    });
    expect(loadKafkaSourceConfig({ KAFKA_BROKERS: 'localhost:9092' })).toEqual({
      kafka: { brokers: ['localhost:9092'], clientId: 'postbox', ssl: false, sasl: undefined },
      topics: undefined,
      groupId: undefined,
      startFrom: 'earliest',
    });
  });

  it('names the variable at fault and never shows the SASL password', () => {
    expect(configError({}).details.variable).toBe('KAFKA_BROKERS');
    expect(configError({ KAFKA_BROKERS: 'no-port' }).details.variable).toBe('KAFKA_BROKERS');
    expect(configError({ KAFKA_BROKERS: 'k:9092', KAFKA_START_FROM: 'middle' }).details.variable).toBe('KAFKA_START_FROM');
    expect(configError({ KAFKA_BROKERS: 'k:9092', KAFKA_TOPIC: 'a,b c' }).details.variable).toBe('KAFKA_TOPIC');
    expect(configError({ KAFKA_BROKERS: 'k:9092', KAFKA_SSL: 'maybe' }).details.variable).toBe('KAFKA_SSL');
    const secret = 'Sup3r-Secret-pw';
    const errors = [
      configError({ KAFKA_BROKERS: 'k:9092', KAFKA_SASL_PASSWORD: secret }),
      configError({ KAFKA_BROKERS: 'k:9092', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_PASSWORD: secret }),
      configError({ KAFKA_BROKERS: 'k:9092', KAFKA_SASL_MECHANISM: 'kerberos', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: secret }),
    ];
    expect(errors.map((error) => error.details.variable)).toEqual(['KAFKA_SASL_MECHANISM', 'KAFKA_SASL_USERNAME', 'KAFKA_SASL_MECHANISM']);
    for (const error of errors) expect(`${error.message} ${JSON.stringify(error.details)}`).not.toContain(secret);
  });

  it('rejects bad options with the option named', () => {
    const bad = (options: Partial<KafkaSourceOptions>) => {
      try {
        resolveKafkaSourceOptions({ kafka: { brokers: ['k:9092'] }, ...options });
      } catch (error) {
        if (error instanceof ValidationError) return error.details.option;
        throw error;
      }
      return undefined;
    };
    expect(bad({ maxBatchSize: 0 })).toBe('maxBatchSize');
    expect(bad({ highWaterMark: 1.5 })).toBe('highWaterMark');
    expect(bad({ heartbeatIntervalMs: 10_000, sessionTimeoutMs: 6_000 })).toBe('heartbeatIntervalMs');
    expect(bad({ startFrom: 'middle' as 'latest' })).toBe('startFrom');
    expect(bad({ retries: 0 })).toBeUndefined();
    expect(bad({ restartDelayMs: 0 })).toBe('restartDelayMs');
    expect(bad({ restartDelayMs: 5_000, maxRestartDelayMs: 1_000 })).toBe('maxRestartDelayMs');
    expect(resolveKafkaSourceOptions({ kafka: { brokers: ['k:9092'] }, restartDelayMs: 120_000 }).maxRestartDelayMs).toBe(120_000);
  });
});

/** One query on a connection of its own, so a pool that lived through the outage cannot skew the check. */
async function queryAt(url: string, sql: string): Promise<Record<string, any>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}
