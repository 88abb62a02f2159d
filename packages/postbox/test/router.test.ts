import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDeadLetters, retryDeadLetters } from '../src/deadletters/dead-letter-store.js';
import { HandlerError } from '../src/errors/postbox-error.js';
import { silentLogger } from '../src/observability/logger.js';
import type { Postbox } from '../src/postbox.js';
import { chainOf, compose, middlewareOrder } from '../src/router/compose.js';
import type { HandlerContext } from '../src/router/handler.js';
import type { RoutedMessage } from '../src/router/routed-message.js';
import { Router } from '../src/router/router.js';
import { backends, type TestPostbox } from './support/backends.js';
import { delay, waitFor } from './support/wait.js';

const fast = { initialDelayMs: 5, maxDelayMs: 20 };

function testMessage(overrides: Partial<RoutedMessage> = {}): RoutedMessage {
  return {
    id: '0190b8c2-0000-7000-8000-000000000001',
    topic: 't',
    type: 'x',
    key: null,
    payload: {},
    headers: {},
    createdAt: new Date(),
    source: { kind: 'log', transactionId: 1n, globalPosition: 1n },
    ...overrides,
  };
}

function testContext(overrides: Partial<HandlerContext> = {}): HandlerContext {
  return {
    group: 'g',
    handler: 'h',
    tx: undefined,
    partition: 0,
    signal: new AbortController().signal,
    attempt: 1,
    logger: silentLogger,
    publish: async () => [],
    ...overrides,
  };
}

describe('middleware order', () => {
  it('is pinned: trace, observe, dedupe, dead letter, park, retry, savepoint, timeout, correlation, custom, recover', () => {
    expect(middlewareOrder).toEqual([
      'trace',
      'observe',
      'dedupe',
      'deadLetter',
      'park',
      'retry',
      'countFailures',
      'savepoint',
      'timeout',
      'correlation',
      'use',
      'recover',
    ]);
    const db = { query: async () => ({ rows: [], rowCount: 0 }), exec: async () => undefined };
    const park = { park: () => undefined };
    const names = chainOf({ db, dedupe: true, timeoutMs: 100, park, use: [(next) => next] }).map((entry) => entry.name);
    expect(names).toEqual(middlewareOrder);
    expect(chainOf({ db }).map((entry) => entry.name)).toEqual([
      'trace',
      'observe',
      'deadLetter',
      'retry',
      'countFailures',
      'savepoint',
      'correlation',
      'recover',
    ]);
  });

  it('runs custom middleware inside retry, once per attempt, and sees typed errors from recover', async () => {
    const seen: string[] = [];
    const db = { query: async () => ({ rows: [], rowCount: 0 }), exec: async () => undefined };
    let calls = 0;
    const chain = compose(
      async () => {
        calls += 1;
        if (calls < 3) throw 'plain string';
      },
      {
        db,
        deadLetter: false,
        retry: { maxAttempts: 3, ...fast },
        use: [
          (next) => async (message, context) => {
            try {
              return await next(message, context);
            } catch (error) {
              seen.push(`${context.attempt}:${(error as Error).constructor.name}`);
              throw error;
            }
          },
        ],
      },
    );
    expect(await chain(testMessage(), testContext())).toBe('handled');
    expect(seen).toEqual(['1:HandlerError', '2:HandlerError']);
  });

  it('times out each attempt separately and retries after a timeout', async () => {
    const db = { query: async () => ({ rows: [], rowCount: 0 }), exec: async () => undefined };
    const attempts: number[] = [];
    const chain = compose(
      async (_message, context) => {
        attempts.push(context.attempt);
        if (context.attempt === 1) await delay(500);
      },
      { db, deadLetter: false, timeoutMs: 50, retry: { maxAttempts: 2, ...fast } },
    );
    const started = Date.now();
    expect(await chain(testMessage(), testContext())).toBe('handled');
    expect(attempts).toEqual([1, 2]);
    expect(Date.now() - started).toBeLessThan(400);
  });

  it('turns a rejected promise and a thrown non-Error into typed errors', async () => {
    const db = { query: async () => ({ rows: [], rowCount: 0 }), exec: async () => undefined };
    const options = { db, deadLetter: false, retry: false } as const;
    const thrown = compose(() => Promise.reject({ reason: 'object' }), options);
    const error = await thrown(testMessage(), testContext()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HandlerError);
    expect(error).toMatchObject({ code: 'POSTBOX_ERR_HANDLER_FAILED' });
    expect((error as Error).message).toContain("reason: 'object'");
    const undefinedThrow = compose(async () => {
      throw undefined;
    }, options);
    await expect(undefinedThrow(testMessage(), testContext())).rejects.toMatchObject({ code: 'POSTBOX_ERR_HANDLER_FAILED' });
  });

  it('never retries an error that says it is not retriable', async () => {
    const db = { query: async () => ({ rows: [], rowCount: 0 }), exec: async () => undefined };
    let calls = 0;
    const chain = compose(
      async () => {
        calls += 1;
        throw Object.assign(new Error('permanent'), { retriable: false });
      },
      { db, deadLetter: false, retry: { maxAttempts: 5, ...fast } },
    );
    await expect(chain(testMessage(), testContext())).rejects.toThrow('permanent');
    expect(calls).toBe(1);
  });
});

describe.each(backends)('router on $name', (backend) => {
  let env: TestPostbox;
  let postbox: Postbox;
  const routers: Router[] = [];

  function router(): Router {
    const created = new Router(postbox, { redeliveryIntervalMs: 100 });
    routers.push(created);
    return created;
  }

  beforeAll(async () => {
    env = await backend.open({ consumerDefaults: { pollIntervalMs: 50, leaseTtlMs: 2_000 } });
    postbox = env.postbox;
  });
  afterAll(async () => {
    await Promise.all(routers.map((r) => r.stop(2_000)));
    await env.cleanup();
  });

  it('moves a poison message to dead letters after its attempts, handles the rest, and redelivers it to its group only', async () => {
    const handledByA: unknown[] = [];
    const handledByB: unknown[] = [];
    let healed = false;
    const retries: number[] = [];
    const r = router()
      .addHandler({
        name: 'poison-a',
        topics: ['poison'],
        concurrency: 1,
        retry: { maxAttempts: 3, ...fast, onRetry: ({ attempt }) => retries.push(attempt) },
        handle: async (message) => {
          if (message.payload === 'bad' && !healed) throw new Error('cannot handle bad');
          handledByA.push(message.payload);
        },
      })
      .addHandler({ name: 'poison-b', topics: ['poison'], handle: async (message) => void handledByB.push(message.payload) });
    await r.start();
    await postbox.publish(['one', 'bad', 'two', 'three'].map((payload) => ({ topic: 'poison', type: 't', key: 'same-key', payload })));
    await waitFor(() => handledByA.length === 3 && handledByB.length === 4, 10_000, 'both groups');
    expect(handledByA).toEqual(['one', 'two', 'three']);
    expect(retries).toEqual([1, 2]);

    const [letter] = await listDeadLetters(postbox.db, { group: 'poison-a' });
    expect(letter).toMatchObject({
      group: 'poison-a',
      handler: 'poison-a',
      topic: 'poison',
      payload: 'bad',
      attempts: 3,
      errorMessage: 'cannot handle bad',
      status: 'pending',
    });
    expect(letter?.errorStack).toContain('cannot handle bad');
    expect(letter?.lastFailedAt.getTime()).toBeGreaterThanOrEqual(letter?.firstFailedAt.getTime() ?? 0);
    expect(await listDeadLetters(postbox.db, { group: 'poison-b' })).toEqual([]);

    healed = true;
    expect(await retryDeadLetters(postbox.db, { id: letter?.id as string })).toBe(1);
    await waitFor(() => handledByA.length === 4, 10_000, 'the retried message');
    await delay(300);
    expect(handledByA).toEqual(['one', 'two', 'three', 'bad']);
    expect(handledByB).toEqual(['one', 'bad', 'two', 'three']);
    expect(await listDeadLetters(postbox.db, { group: 'poison-a' })).toEqual([]);
    expect((await listDeadLetters(postbox.db, { group: 'poison-a', status: 'retried' })).map((l) => l.id)).toEqual([letter?.id]);
  });

  it('sends an undecodable message to dead letters at once, without retries', async () => {
    let calls = 0;
    const r = router().addHandler<{ n: number }>({
      name: 'decode',
      topics: ['decode'],
      decode: (message) => {
        const payload = message.payload as { n?: unknown };
        if (typeof payload?.n !== 'number') throw new Error('n must be a number');
        return { n: payload.n };
      },
      handle: async () => {
        calls += 1;
      },
    });
    await r.start();
    await postbox.publish([{ n: 1 }, { n: 'x' }, { n: 2 }].map((payload) => ({ topic: 'decode', type: 't', payload })));
    await waitFor(() => calls === 2, 10_000, 'the good messages');
    await waitFor(async () => (await listDeadLetters(postbox.db, { group: 'decode' })).length === 1, 5_000, 'the dead letter');
    const [letter] = await listDeadLetters(postbox.db, { group: 'decode' });
    expect(letter).toMatchObject({ attempts: 0, errorCode: 'POSTBOX_ERR_DECODE' });
    expect(letter?.errorMessage).toContain('n must be a number');
  });

  it('keeps per-key order with 10 keys × 1,000 messages at concurrency 8', async () => {
    const perKey = new Map<string, number[]>();
    let active = 0;
    let maxActive = 0;
    const r = router().addHandler({
      name: 'order',
      topics: ['order'],
      concurrency: 8,
      batchSize: 500,
      handle: async (message) => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        if (Math.random() < 0.05) await delay(1);
        else await Promise.resolve();
        const key = message.key as string;
        perKey.set(key, [...(perKey.get(key) ?? []), (message.payload as { seq: number }).seq]);
        active -= 1;
      },
    });
    const messages = [];
    for (let seq = 0; seq < 1_000; seq++) {
      for (let k = 0; k < 10; k++) messages.push({ topic: 'order', type: 't', key: `k${k}`, payload: { seq } });
    }
    for (let i = 0; i < messages.length; i += 2_000) await postbox.publish(messages.slice(i, i + 2_000));
    await r.start();
    await waitFor(() => [...perKey.values()].reduce((n, list) => n + list.length, 0) === 10_000, 60_000, 'every message');
    expect(perKey.size).toBe(10);
    for (const list of perKey.values()) expect(list).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
    expect(maxActive).toBeGreaterThan(1);
    expect(maxActive).toBeLessThanOrEqual(8);
  });

  it('shares a partitioned route between two routers: each holds half the partitions, and each key stays in order', async () => {
    const perKey = new Map<string, number[]>();
    const partitionsSeen = new Map<string, Set<number>>();
    const handled = new Map<number, number>();
    const route = (routerIndex: number) => ({
      name: 'split',
      topics: ['split'],
      partitions: 4,
      transactional: true,
      handle: async (message: RoutedMessage, context: HandlerContext) => {
        const key = message.key as string;
        perKey.set(key, [...(perKey.get(key) ?? []), (message.payload as { seq: number }).seq]);
        partitionsSeen.set(key, (partitionsSeen.get(key) ?? new Set()).add(context.partition as number));
        handled.set(routerIndex, (handled.get(routerIndex) ?? 0) + 1);
      },
    });
    const first = router().addHandler(route(0));
    const second = router().addHandler(route(1));
    await first.start();
    await second.start();
    const messages = [];
    for (let seq = 0; seq < 100; seq++) {
      for (let k = 0; k < 20; k++) messages.push({ topic: 'split', type: 't', key: `k${k}`, payload: { seq } });
    }
    await postbox.publish(messages);
    await waitFor(() => [...perKey.values()].reduce((n, list) => n + list.length, 0) === 2_000, 30_000, 'every message');
    for (const list of perKey.values()) expect(list).toEqual(Array.from({ length: 100 }, (_, i) => i));
    for (const seen of partitionsSeen.values()) expect(seen.size).toBe(1);
    const [status] = await postbox.groupStatus('split');
    expect(status?.members.filter((m) => m.live).map((m) => m.partitions.length)).toEqual([2, 2]);
    if (backend.name === 'postgres') expect([...handled.values()].every((n) => n > 0)).toBe(true);
  });

  it('carries correlation and causation ids onto follow-up messages, in the same transaction', async () => {
    const r = router().addHandler({
      name: 'correlate',
      topics: ['commands'],
      transactional: true,
      handle: async (message, context) => {
        await context.publish({ topic: 'events', type: 'done', payload: { for: message.id } });
      },
    });
    await r.start();
    const [commandId] = await postbox.publish({ topic: 'commands', type: 'do', payload: 1, correlationId: 'corr-1', traceId: 'trace-1' });
    let follow: { headers: Record<string, unknown> } | undefined;
    await waitFor(
      async () => {
        const { rows } = await postbox.db.query<{ headers: Record<string, unknown> }>(
          `select headers from postbox.messages where topic = 'events'`,
        );
        follow = rows[0];
        return follow !== undefined;
      },
      10_000,
      'the follow-up',
    );
    expect(follow?.headers).toMatchObject({ correlationId: 'corr-1', causationId: commandId, traceId: 'trace-1' });
  });

  it('skips a message id the group already handled when dedupe is on', async () => {
    const chain = compose(async () => undefined, { db: postbox.db, dedupe: true });
    const message = testMessage({ id: 'dedupe-1' });
    const context = testContext({ group: 'dedupe-g' });
    expect(await chain(message, context)).toBe('handled');
    expect(await chain(message, context)).toBe('duplicate');
    expect(await chain(testMessage({ id: 'dedupe-2' }), context)).toBe('handled');
    expect(await chain(message, testContext({ group: 'other-group' }))).toBe('handled');
  });

  it('counts messages a batch handler took whole as handled', async () => {
    const r = router().addHandler({ name: 'whole', topics: ['whole'], handleBatch: async () => undefined });
    await r.start();
    await postbox.publish([1, 2, 3].map((payload) => ({ topic: 'whole', type: 't', payload })));
    await waitFor(async () => (await postbox.groupStatus('whole'))[0]?.lagMessages === 0, 10_000, 'the batch');
    const text = await r.metrics.registry.getSingleMetricAsString('postbox_messages_handled_total');
    expect(text).toContain('postbox_messages_handled_total{group="whole",handler="whole",outcome="handled"} 3');
  });

  it('splits a failing batch so that only the bad message is dead-lettered, and undoes its writes', async () => {
    await postbox.db.query('create table batch_sink (payload text not null)');
    const r = router().addHandler({
      name: 'batch',
      topics: ['batch'],
      transactional: true,
      retry: { maxAttempts: 2, ...fast },
      handleBatch: async (messages, context) => {
        for (const message of messages) {
          await context.tx?.query('insert into batch_sink values ($1)', [message.payload]);
          if (message.payload === 'bad') throw new Error('bad row');
        }
      },
    });
    await r.start();
    await postbox.publish(['a', 'b', 'bad', 'c'].map((payload) => ({ topic: 'batch', type: 't', payload })));
    await waitFor(async () => (await postbox.groupStatus('batch'))[0]?.lagMessages === 0, 10_000, 'the batch');
    const { rows } = await postbox.db.query<{ payload: string }>('select payload from batch_sink order by payload');
    expect(rows.map((row) => row.payload)).toEqual(['a', 'b', 'c']);
    expect((await listDeadLetters(postbox.db, { group: 'batch' })).map((l) => [l.payload, l.attempts])).toEqual([['bad', 2]]);
  });
});
