import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Decider } from '../src/eventstore/decider.js';
import type { Postbox } from '../src/postbox.js';
import { postgresBackend, type TestPostbox } from './support/backends.js';

type CounterEvent = { type: 'Incremented'; data: { worker: number; seq: number } };
type Increment = { type: 'Increment'; worker: number; seq: number };

const counter: Decider<Increment, CounterEvent, number> = {
  initialState: () => 0,
  evolve: (state) => state + 1,
  decide: (command) => ({ type: 'Incremented', data: { worker: command.worker, seq: command.seq } }),
};

describe('event store under concurrent writers (postgres)', () => {
  let env: TestPostbox;
  let postbox: Postbox;

  beforeAll(async () => {
    env = await postgresBackend.open({ pool: { max: 12 } });
    postbox = env.postbox;
  });
  afterAll(() => env.cleanup());

  it('8 workers append 500 events each to one stream through the command handler: version 4,000, no gap, no duplicate', async () => {
    const workers = 8;
    const perWorker = 500;
    const store = postbox.eventStore();
    const handler = store.commandHandler({
      decider: counter,
      name: 'counter',
      snapshots: { policy: { every: 100 } },
      retry: { maxAttempts: 1_000, initialDelayMs: 2, maxDelayMs: 50, jitter: 0.5 },
    });
    const streamId = 'counter-shared';
    let retried = 0;
    await Promise.all(
      Array.from({ length: workers }, async (_, worker) => {
        for (let seq = 0; seq < perWorker; seq++) {
          const result = await handler.handle(streamId, { type: 'Increment', worker, seq });
          if (result.attempts > 1) retried += 1;
          expect(result.nextExpectedVersion).toBe(result.previousVersion + 1);
          expect(result.state).toBe(result.nextExpectedVersion);
        }
      }),
    );
    const total = workers * perWorker;
    expect(retried).toBeGreaterThan(0);
    expect((await store.streamInfo(streamId)).version).toBe(total);
    const { rows } = await postbox.db.query<{ positions: number; distinct_positions: number; low: number; high: number; pairs: number }>(
      `select count(*)::int as positions, count(distinct stream_position)::int as distinct_positions,
              min(stream_position)::int as low, max(stream_position)::int as high,
              count(distinct (payload->>'worker', payload->>'seq'))::int as pairs
       from postbox.messages where stream_id = $1`,
      [streamId],
    );
    expect(rows[0]).toEqual({ positions: total, distinct_positions: total, low: 1, high: total, pairs: total });
    const read = await store.readStream<CounterEvent>(streamId);
    for (let worker = 0; worker < workers; worker++) {
      const seqs = read.events.filter((event) => event.data.worker === worker).map((event) => event.data.seq);
      expect(seqs).toEqual(Array.from({ length: perWorker }, (_, seq) => seq));
    }
    const loaded = await store.aggregate(streamId, { ...counter, name: 'counter', snapshots: {} });
    expect(loaded).toMatchObject({ state: total, version: total, snapshot: 'used' });
    expect(loaded.replayed).toBeLessThan(100);
  }, 150_000);

  it('lets exactly one of 8 racing appends create a stream or take a version; the others get ConcurrencyError', async () => {
    const store = postbox.eventStore();
    const race = (streamId: string, expectedVersion: 'no_stream' | number, size: number) =>
      Promise.allSettled(
        Array.from({ length: 8 }, (_, worker) =>
          store.append(
            streamId,
            Array.from({ length: size }, (_, seq) => ({ type: 'Incremented', data: { worker, seq } })),
            { expectedVersion },
          ),
        ),
      );
    for (const size of [1, 2]) {
      const streamId = `race${size}-shared`;
      for (const expectedVersion of ['no_stream', size] as const) {
        const outcomes = await race(streamId, expectedVersion, size);
        expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected')
            expect(outcome.reason).toMatchObject({ code: 'POSTBOX_ERR_CONCURRENCY', expected: expectedVersion });
        }
      }
      expect((await store.streamInfo(streamId)).version).toBe(2 * size);
    }
  });
});
