import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { discardDeadLetters, listDeadLetters, retryDeadLetters } from '../src/deadletters/dead-letter-store.js';
import type { Postbox } from '../src/postbox.js';
import type { HandlerContext } from '../src/router/handler.js';
import type { RouteSourceFactory } from '../src/router/route-source.js';
import type { RoutedMessage } from '../src/router/routed-message.js';
import { type RouteOptions, Router } from '../src/router/router.js';
import { backends, postgresBackend, type TestPostbox } from './support/backends.js';
import { exited, spawnTs, waitForLine } from './support/child.js';
import { cli, lines } from './support/cli.js';
import { delay, waitFor } from './support/wait.js';

const quick = { maxAttempts: 2, initialDelayMs: 5, maxDelayMs: 10 };

interface Seen {
  key: string | null;
  seq: number;
}

const seqOf = (message: RoutedMessage) => (message.payload as { seq: number }).seq;

/** Messages for keys, `count` of each, interleaved: seq 0 of every key, then seq 1... */
function interleaved(topic: string, keys: readonly string[], count: number, from = 0) {
  const messages = [];
  for (let seq = from; seq < from + count; seq++) {
    for (const key of keys) messages.push({ topic, type: 't', key, payload: { seq } });
  }
  return messages;
}

function seqsOf(seen: readonly Seen[], key: string): number[] {
  return seen.filter((entry) => entry.key === key).map((entry) => entry.seq);
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe.each(backends)('parking on $name', (backend) => {
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
  afterEach(async () => {
    await Promise.all(routers.splice(0).map((r) => r.stop(2_000)));
  });
  afterAll(async () => {
    await env.cleanup();
  });

  /** A route whose handler fails for the keys in `failing` while they are there, and records what it handled. */
  function failingRoute(name: string, failing: Set<string>, overrides: Partial<RouteOptions> = {}) {
    const handled: Seen[] = [];
    const attempts: Seen[] = [];
    const route: RouteOptions = {
      name,
      topics: [name],
      retry: quick,
      park: { initialDelayMs: 30, maxDelayMs: 60, jitter: 0, maxAttempts: null, maxAgeMs: 600_000 },
      handle: async (message) => {
        attempts.push({ key: message.key, seq: seqOf(message) });
        if (message.key !== null && failing.has(message.key)) throw new Error(`downstream of ${message.key} is down`);
        handled.push({ key: message.key, seq: seqOf(message) });
      },
      ...overrides,
    };
    return { route, handled, attempts };
  }

  it('lets every other key flow while one key is parked, and handles that key in log order once it succeeds', async () => {
    const failing = new Set(['bad']);
    const { route, handled, attempts } = failingRoute('flow', failing, { concurrency: 4 });
    const r = router().addHandler(route);
    await r.start();
    await postbox.publish(interleaved('flow', ['a', 'bad', 'b'], 10));

    await waitFor(() => seqsOf(handled, 'a').length === 10 && seqsOf(handled, 'b').length === 10, 10_000, 'keys a and b');
    expect(seqsOf(handled, 'a')).toEqual(range(0, 10));
    expect(seqsOf(handled, 'b')).toEqual(range(0, 10));
    // The group's checkpoint moved past the parked messages.
    await waitFor(async () => (await postbox.groupStatus('flow'))[0]?.lagMessages === 0, 5_000, 'the checkpoint');
    // Let the head be attempted again from parking a few times.
    await delay(300);
    const parked = await postbox.parked.list({ group: 'flow', key: 'bad' });
    expect(parked.map((p) => (p.payload as { seq: number }).seq)).toEqual(range(0, 10));
    expect(parked.map((p) => p.status)).toEqual(['waiting', ...Array(9).fill('follower')]);
    expect(parked[0]?.parkedAttempts).toBeGreaterThan(0);
    expect(parked[0]?.errorMessage).toBe('downstream of bad is down');
    // Only the head was ever attempted: its followers wait, unattempted.
    expect(new Set(seqsOf(attempts, 'bad'))).toEqual(new Set([0]));

    failing.delete('bad');
    await waitFor(() => seqsOf(handled, 'bad').length === 10, 10_000, 'the parked key');
    expect(seqsOf(handled, 'bad')).toEqual(range(0, 10));
    await waitFor(async () => (await postbox.parked.list({ group: 'flow' })).length === 0, 5_000, 'no parked row left');
    expect(await listDeadLetters(postbox.db, { group: 'flow' })).toEqual([]);
  });

  it("with onDeadLetter 'release', handles the key's later messages in order at once after its dead letter", async () => {
    const { route, handled } = failingRoute('release', new Set(), {
      retry: { maxAttempts: 1 },
      park: { initialDelayMs: 20, jitter: 0, maxAttempts: 2, onDeadLetter: 'release' },
      handle: async (message) => {
        if (seqOf(message) === 0) throw new Error('poison');
        handled.push({ key: message.key, seq: seqOf(message) });
      },
    });
    await router().addHandler(route).start();
    await postbox.publish(interleaved('release', ['k'], 5));
    await waitFor(() => handled.length === 4, 10_000, 'the later messages');
    expect(seqsOf(handled, 'k')).toEqual(range(1, 5));
    const [letter] = await listDeadLetters(postbox.db, { group: 'release' });
    // One attempt in process, two from parking.
    expect(letter).toMatchObject({ key: 'k', payload: { seq: 0 }, attempts: 3, errorMessage: 'poison' });
    await waitFor(async () => (await postbox.parked.list({ group: 'release' })).length === 0, 5_000, 'parking to empty');
  });

  it("with onDeadLetter 'hold', keeps the key's later messages until the dead letter is retried, then handles them after it", async () => {
    const failing = new Set(['k']);
    const { route, handled } = failingRoute('hold', failing, {
      retry: { maxAttempts: 1 },
      park: { initialDelayMs: 20, jitter: 0, maxAttempts: 1, onDeadLetter: 'hold' },
    });
    await router().addHandler(route).start();
    await postbox.publish(interleaved('hold', ['k', 'other'], 3));
    await waitFor(async () => (await listDeadLetters(postbox.db, { group: 'hold' })).length === 1, 10_000, 'the dead letter');
    await postbox.publish(interleaved('hold', ['k', 'other'], 2, 3));
    await waitFor(() => seqsOf(handled, 'other').length === 5, 10_000, 'the other key');
    await delay(200);
    expect(seqsOf(handled, 'k')).toEqual([]);
    const [letter] = await listDeadLetters(postbox.db, { group: 'hold' });
    const parked = await postbox.parked.list({ group: 'hold', key: 'k' });
    expect(parked.map((p) => [(p.payload as { seq: number }).seq, p.status])).toEqual([
      [0, 'dead_lettered'],
      [1, 'follower'],
      [2, 'follower'],
      [3, 'follower'],
      [4, 'follower'],
    ]);
    expect(parked[0]?.deadLetterId).toBe(letter?.id);

    failing.delete('k');
    await retryDeadLetters(postbox.db, { id: letter?.id as string });
    await waitFor(() => seqsOf(handled, 'k').length === 5, 10_000, 'the held key');
    expect(seqsOf(handled, 'k')).toEqual(range(0, 5));
    // A released message's parked row goes once its handling is recorded, just after the handler returns.
    await waitFor(async () => (await postbox.parked.list({ group: 'hold' })).length === 0, 5_000, 'no parked row left');
  });

  it("with onDeadLetter 'hold', releases the key's later messages when the dead letter is discarded", async () => {
    const { route, handled } = failingRoute('hold-discard', new Set(), {
      retry: { maxAttempts: 1 },
      park: { initialDelayMs: 20, jitter: 0, maxAttempts: 1, onDeadLetter: 'hold' },
      handle: async (message) => {
        if (seqOf(message) === 0) throw new Error('poison');
        handled.push({ key: message.key, seq: seqOf(message) });
      },
    });
    await router().addHandler(route).start();
    await postbox.publish(interleaved('hold-discard', ['k'], 4));
    await waitFor(async () => (await listDeadLetters(postbox.db, { group: 'hold-discard' })).length === 1, 10_000, 'the dead letter');
    await delay(200);
    expect(handled).toEqual([]);
    await discardDeadLetters(postbox.db, { group: 'hold-discard' });
    await waitFor(() => handled.length === 3, 10_000, 'the released key');
    expect(seqsOf(handled, 'k')).toEqual(range(1, 4));
  });

  it('puts a new message of a parked key after the followers being released, never between them', async () => {
    const failing = new Set(['k']);
    const { route, handled } = failingRoute('race', failing, {
      retry: { maxAttempts: 1 },
      // A few parked messages per gap between batches, so that releasing them spans many batches.
      park: { initialDelayMs: 20, maxDelayMs: 20, jitter: 0, maxAttempts: null, maxAgeMs: 600_000, batchSize: 3 },
      batchSize: 5,
      handle: async (message) => {
        if (message.key !== null && failing.has(message.key)) throw new Error('down');
        await delay(1);
        handled.push({ key: message.key, seq: seqOf(message) });
      },
    });
    await router().addHandler(route).start();
    await postbox.publish(interleaved('race', ['k'], 60));
    await waitFor(async () => (await postbox.parked.list({ group: 'race', limit: 1_000 })).length === 60, 10_000, 'the parked key');
    failing.delete('k');
    // New messages of the key keep arriving while its parked ones are being released.
    for (let from = 60; from < 120; from += 4) {
      await postbox.publish(interleaved('race', ['k', 'x'], 4, from));
      await delay(5);
    }
    await waitFor(() => seqsOf(handled, 'k').length === 120, 20_000, 'every message of the key');
    expect(seqsOf(handled, 'k')).toEqual(range(0, 120));
  });

  it('waits with an exponential backoff up to its cap, and dead-letters after the maximum attempts', async () => {
    const times: number[] = [];
    await router()
      .addHandler({
        name: 'backoff',
        topics: ['backoff'],
        retry: false,
        park: { initialDelayMs: 100, multiplier: 2, maxDelayMs: 200, jitter: 0, maxAttempts: 4, maxAgeMs: null },
        handle: async () => {
          times.push(Date.now());
          throw new Error('always');
        },
      })
      .start();
    await postbox.publish({ topic: 'backoff', type: 't', key: 'k', payload: { seq: 0 } });
    await waitFor(async () => (await listDeadLetters(postbox.db, { group: 'backoff' })).length === 1, 10_000, 'the dead letter');
    expect(times).toHaveLength(5);
    const gaps = times.slice(1).map((time, i) => time - (times[i] as number));
    const expected = [100, 200, 200, 200];
    gaps.forEach((gap, i) => {
      expect(gap).toBeGreaterThanOrEqual((expected[i] as number) - 5);
      expect(gap).toBeLessThan((expected[i] as number) + 150);
    });
    const [letter] = await listDeadLetters(postbox.db, { group: 'backoff' });
    expect(letter?.attempts).toBe(5);
    // Outside transactional mode the parked row goes just after its dead letter is written.
    await waitFor(async () => (await postbox.parked.list({ group: 'backoff' })).length === 0, 5_000, 'parking to empty');
  });

  it('dead-letters a message at its maximum age, with its last attempt made at that age', async () => {
    const times: number[] = [];
    await router()
      .addHandler({
        name: 'max-age',
        topics: ['max-age'],
        retry: false,
        park: { initialDelayMs: 100, multiplier: 2, maxDelayMs: 10_000, jitter: 0, maxAttempts: null, maxAgeMs: 500 },
        handle: async () => {
          times.push(Date.now());
          throw new Error('always');
        },
      })
      .start();
    await postbox.publish({ topic: 'max-age', type: 't', key: 'k', payload: { seq: 0 } });
    await waitFor(async () => (await listDeadLetters(postbox.db, { group: 'max-age' })).length === 1, 10_000, 'the dead letter');
    // At 0, 100 and 300 ms, then at 500 (the 400 ms step is cut to the age left), and no more.
    expect(times).toHaveLength(4);
    const last = (times[3] as number) - (times[0] as number);
    expect(last).toBeGreaterThanOrEqual(495);
    expect(last).toBeLessThan(800);
  });

  it('releases a key now and discards a parked message through the API, and shows them in its metrics', async () => {
    const failing = new Set(['k', 'j']);
    const { route, handled } = failingRoute('api', failing, {
      retry: { maxAttempts: 1 },
      park: { initialDelayMs: 600_000, maxDelayMs: 600_000, jitter: 0, maxAttempts: 3 },
    });
    const r = router().addHandler(route);
    await r.start();
    await postbox.publish(interleaved('api', ['k', 'j'], 3));
    await waitFor(async () => (await postbox.parked.list({ group: 'api' })).length === 6, 10_000, 'the parked keys');

    const metrics = await r.metrics.registry.getSingleMetricAsString('postbox_parked_messages');
    expect(metrics).toContain('postbox_parked_messages{group="api"} 6');
    const oldest = await r.metrics.registry.getSingleMetricAsString('postbox_parked_oldest_seconds');
    expect(oldest).toMatch(/postbox_parked_oldest_seconds\{group="api"\} [0-9.]+/);
    expect(await postbox.parked.counts()).toContainEqual(
      expect.objectContaining({ group: 'api', total: 6, waiting: 2, followers: 4, deadLettered: 0 }),
    );

    failing.delete('k');
    const released = await postbox.parked.release({ group: 'api', key: 'k' });
    expect(released).toMatchObject({ key: 'k', status: 'waiting', payload: { seq: 0 } });
    await waitFor(() => seqsOf(handled, 'k').length === 3, 10_000, 'the released key');
    expect(seqsOf(handled, 'k')).toEqual([0, 1, 2]);

    const [head] = await postbox.parked.list({ group: 'api', key: 'j' });
    failing.delete('j');
    const discarded = await postbox.parked.discard(head?.id as string);
    expect(discarded).toMatchObject({ key: 'j', payload: { seq: 0 } });
    await waitFor(() => seqsOf(handled, 'j').length === 2, 10_000, 'the messages behind the discarded one');
    expect(seqsOf(handled, 'j')).toEqual([1, 2]);
    expect(await listDeadLetters(postbox.db, { group: 'api', status: 'discarded' })).toEqual([
      expect.objectContaining({ key: 'j', payload: { seq: 0 }, attempts: 1, errorMessage: 'downstream of j is down' }),
    ]);

    await expect(postbox.parked.release({ group: 'api', key: 'nobody' })).rejects.toMatchObject({ code: 'POSTBOX_ERR_PARKED_NOT_FOUND' });
    await expect(postbox.parked.discard('abc')).rejects.toMatchObject({ code: 'POSTBOX_ERR_PARKED_NOT_FOUND' });
    await expect(postbox.parked.discard(head?.id as string)).rejects.toMatchObject({ code: 'POSTBOX_ERR_PARKED_NOT_FOUND' });
  });

  it('parks nothing twice when a batch is delivered again outside transactional mode', async () => {
    const failing = new Set(['bad']);
    const first = failingRoute('again', failing);
    await router().addHandler(first.route).start();
    await postbox.publish(interleaved('again', ['a', 'bad'], 5));
    await waitFor(() => first.handled.length === 5, 10_000, 'key a');
    await waitFor(async () => (await postbox.parked.list({ group: 'again' })).length === 5, 5_000, 'the parked key');
    await Promise.all(routers.splice(0).map((r) => r.stop(2_000)));
    // The whole batch is delivered again, as after a crash before its checkpoint.
    await postbox.resetGroup({ group: 'again', to: 'earliest' });
    const second = failingRoute('again', failing);
    await router().addHandler(second.route).start();
    await waitFor(() => second.handled.length === 5, 10_000, 'key a again');
    await delay(200);
    const parked = await postbox.parked.list({ group: 'again' });
    expect(parked.map((p) => (p.payload as { seq: number }).seq)).toEqual(range(0, 5));
    expect(new Set(seqsOf(second.attempts, 'bad'))).toEqual(new Set([0]));
  });

  it('refuses park on a source that cannot fence it, with deadLetter: false, and with bad options', () => {
    const kafkaLike: RouteSourceFactory = () => ({ kind: 'kafka', start: async () => undefined, stop: async () => true });
    const handle = async () => undefined;
    expect(() => router().addHandler({ name: 'k1', topics: ['t'], source: kafkaLike, park: true, handle })).toThrow(
      expect.objectContaining({ code: 'POSTBOX_ERR_BAD_OPTION', message: expect.stringContaining('PostgreSQL log') }),
    );
    expect(() => router().addHandler({ name: 'k2', topics: ['t'], park: true, deadLetter: false, handle })).toThrow(
      expect.objectContaining({ code: 'POSTBOX_ERR_BAD_OPTION' }),
    );
    for (const park of [
      { initialDelayMs: 0 },
      { maxDelayMs: 10, initialDelayMs: 20 },
      { multiplier: 0.5 },
      { jitter: 2 },
      { maxAttempts: null, maxAgeMs: null },
      { onDeadLetter: 'drop' as 'hold' },
    ]) {
      expect(() => router().addHandler({ name: 'k3', topics: ['t'], park, handle })).toThrow(
        expect.objectContaining({ code: 'POSTBOX_ERR_BAD_OPTION' }),
      );
    }
  });
});

describe('parking on postgres, across processes and members', () => {
  let env: TestPostbox;
  let postbox: Postbox;
  const routers: Router[] = [];

  beforeAll(async () => {
    env = await postgresBackend.open({ consumerDefaults: { pollIntervalMs: 50, leaseTtlMs: 1_000 } });
    postbox = env.postbox;
  });
  afterEach(async () => {
    await Promise.all(routers.splice(0).map((r) => r.stop(2_000)));
  });
  afterAll(async () => {
    await env.cleanup();
  });

  it('loses and doubles nothing when a transactional member is killed while it parks', async () => {
    await postbox.db.query('create table effects (id bigserial primary key, message_id uuid not null, key text, seq int, pid int)');
    await postbox.db.query('create table healed (at timestamptz default now())');
    const keys = ['k0', 'k1', 'bad', 'k2', 'k3'];
    await postbox.publish(interleaved('killed', keys, 40));
    const env2 = { DATABASE_URL: env.url as string, GROUP: 'killed', TOPIC: 'killed' };
    const count = async (sql: string) => Number((await postbox.db.query<{ n: number }>(sql)).rows[0]?.n);

    for (const round of [1, 2]) {
      const child = spawnTs('fixtures/parking-process.ts', env2);
      await waitForLine(child, 'started');
      await waitFor(
        async () =>
          (await count("select count(*)::int as n from postbox.parked_messages where group_name = 'killed'")) >= 10 * round &&
          (await count('select count(*)::int as n from effects')) >= 40 * round,
        20_000,
        'parking under way',
      );
      child.kill('SIGKILL');
      await exited(child);
    }
    // Parked rows committed with their batch: each bad message at most once.
    const parked = await postbox.db.query<{ message_id: string }>(
      "select message_id from postbox.parked_messages where group_name = 'killed'",
    );
    expect(new Set(parked.rows.map((row) => row.message_id)).size).toBe(parked.rows.length);

    await postbox.db.query('insert into healed default values');
    const last = spawnTs('fixtures/parking-process.ts', env2);
    await waitForLine(last, 'started');
    try {
      await waitFor(async () => (await count('select count(*)::int as n from effects')) === 200, 30_000, 'every effect');
    } finally {
      last.kill('SIGKILL');
      await exited(last);
    }
    expect(await count('select count(distinct message_id)::int as n from effects')).toBe(200);
    const { rows } = await postbox.db.query<{ key: string; seqs: number[] }>(
      'select key, array_agg(seq order by id) as seqs from effects group by key order by key',
    );
    for (const row of rows) expect(row.seqs).toEqual(range(0, 40));
    expect(await count("select count(*)::int as n from postbox.parked_messages where group_name = 'killed'")).toBe(0);
    expect(await listDeadLetters(postbox.db, { group: 'killed' })).toEqual([]);
  });

  it('moves parked state with its partition to another member', async () => {
    const failing = new Set(['bad']);
    const handledBy = new Map<string, { member: number; seq: number }[]>();
    const route = (member: number): RouteOptions => ({
      name: 'moved',
      topics: ['moved'],
      partitions: 2,
      transactional: true,
      retry: { maxAttempts: 1 },
      park: { initialDelayMs: 30, maxDelayMs: 30, jitter: 0, maxAttempts: null, maxAgeMs: 600_000 },
      handle: async (message: RoutedMessage, _context: HandlerContext) => {
        if (message.key !== null && failing.has(message.key)) throw new Error('down');
        const list = handledBy.get(message.key as string) ?? [];
        list.push({ member, seq: seqOf(message) });
        handledBy.set(message.key as string, list);
      },
    });
    const first = new Router(postbox, { redeliveryIntervalMs: 100 }).addHandler(route(1));
    routers.push(first);
    await first.start();
    await postbox.publish(interleaved('moved', ['bad', 'a', 'b', 'c'], 5));
    await waitFor(async () => (await postbox.parked.list({ group: 'moved' })).length === 5, 10_000, 'the parked key').catch(async (e) => {
      console.log(
        'DIAG',
        JSON.stringify(await postbox.groupStatus('moved')),
        [...handledBy.entries()],
        (await postbox.parked.list({ group: 'moved' })).map((p) => [p.key, p.status, p.payload]),
      );
      console.log(
        'DIAG2',
        JSON.stringify((await postbox.db.query("select pid, state, xact_start, query from pg_stat_activity where state <> 'idle'")).rows),
      );
      throw e;
    });
    const second = new Router(postbox, { redeliveryIntervalMs: 100 }).addHandler(route(2));
    routers.push(second);
    await second.start();
    await first.stop(2_000);
    await waitFor(
      async () =>
        (await postbox.groupStatus('moved'))[0]?.members
          .filter((m) => m.live)
          .map((m) => m.partitions.length)
          .join() === '2',
      10_000,
      'the second member holding both partitions',
    );
    failing.delete('bad');
    await waitFor(() => (handledBy.get('bad') ?? []).length === 5, 10_000, 'the parked key, on the second member');
    // The handler records before its transaction commits: the parked rows go with that commit.
    await waitFor(async () => (await postbox.parked.list({ group: 'moved' })).length === 0, 10_000, 'parking to empty');
    expect(handledBy.get('bad')).toEqual(range(0, 5).map((seq) => ({ member: 2, seq })));
  });

  it('fences work between batches by the lease: a member that lost its partition changes nothing', async () => {
    await postbox.db.query('create table fenced (partition int)');
    let runs = 0;
    const consumer = postbox.consumer({
      group: 'fenced',
      topics: ['fenced'],
      leaseTtlMs: 60_000,
      handleBatch: async () => undefined,
      betweenBatches: async (turn) => {
        runs += 1;
        await postbox.db.transaction(async (tx) => {
          await tx.query('insert into fenced values ($1)', [turn.partition]);
          await turn.fence(tx);
        });
        return new Date(Date.now() + 60_000);
      },
    });
    const written = async () => Number((await postbox.db.query<{ n: number }>('select count(*)::int as n from fenced')).rows[0]?.n);
    await consumer.start();
    await waitFor(async () => (await written()) > 0, 5_000, 'the first run');
    const before = { runs, rows: await written() };
    await postbox.db.query(
      "update postbox.group_partitions set lease_owner = 'another member', lease_expires_at = now() + interval '1 hour' where group_name = 'fenced'",
    );
    consumer.wakeBetweenBatches();
    await waitFor(() => runs > before.runs, 5_000, 'a run after the lease was taken');
    await waitFor(() => consumer.partitions.length === 0, 5_000, 'the partition given up');
    expect(await written()).toBe(before.rows);
    await consumer.stop(2_000);
  });

  it('lists, releases and discards parked messages from the command line, and shows them in status', async () => {
    const failing = new Set(['k', 'j']);
    const handled: Seen[] = [];
    const r = new Router(postbox, { redeliveryIntervalMs: 100 }).addHandler({
      name: 'cli',
      topics: ['cli'],
      retry: { maxAttempts: 1 },
      park: { initialDelayMs: 600_000, maxDelayMs: 600_000, jitter: 0 },
      handle: async (message) => {
        if (message.key !== null && failing.has(message.key)) throw new Error('down');
        handled.push({ key: message.key, seq: seqOf(message) });
      },
    });
    routers.push(r);
    await r.start();
    await postbox.publish(interleaved('cli', ['k', 'j'], 2));
    await waitFor(async () => (await postbox.parked.list({ group: 'cli' })).length === 4, 10_000, 'the parked keys');
    const dbEnv = { DATABASE_URL: env.url };

    const listed = await cli(['parked', 'list', '--group', 'cli', '--key', 'k', '--json'], dbEnv);
    expect(listed.code, listed.stderr).toBe(0);
    const rows = lines(listed.stdout).map((line) => JSON.parse(line) as { id: string; status: string; payload: { seq: number } });
    expect(rows.map((row) => [row.payload.seq, row.status])).toEqual([
      [0, 'waiting'],
      [1, 'follower'],
    ]);
    const table = await cli(['parked', 'list', '--group', 'cli'], dbEnv);
    expect(table.stdout).toMatch(/ID\s+GROUP\s+KEY/);

    const status = await cli(['status', '--json'], dbEnv);
    expect(JSON.parse(status.stdout).parked).toContainEqual(expect.objectContaining({ group: 'cli', total: 4 }));
    expect((await cli(['status'], dbEnv)).stdout).toMatch(/HELD BY DEAD LETTER/);

    failing.delete('k');
    const released = await cli(['parked', 'release', '--group', 'cli', '--key', 'k'], dbEnv);
    expect(released.code, released.stderr).toBe(0);
    await waitFor(() => seqsOf(handled, 'k').length === 2, 10_000, 'the released key');
    expect(seqsOf(handled, 'k')).toEqual([0, 1]);

    const [head] = await postbox.parked.list({ group: 'cli', key: 'j' });
    failing.delete('j');
    const discarded = await cli(['parked', 'discard', head?.id as string], dbEnv);
    expect(discarded.code, discarded.stderr).toBe(0);
    await waitFor(() => seqsOf(handled, 'j').length === 1, 10_000, 'the message behind the discarded one');
    expect(seqsOf(handled, 'j')).toEqual([1]);

    const missing = await cli(['parked', 'discard', head?.id as string], dbEnv);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('POSTBOX_ERR_PARKED_NOT_FOUND');
    const usage = await cli(['parked', 'release', '7', '--group', 'cli'], dbEnv);
    expect(usage.code).toBe(1);
    expect(usage.stderr).toMatch(/^postbox: POSTBOX_ERR_USAGE: Give a parked message id, or --group and --key, not both/);
  });
});
