import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyError } from '../src/eventstore/concurrency-error.js';
import type { ExpectedVersion } from '../src/eventstore/event.js';
import type { EventStore } from '../src/eventstore/event-store.js';
import { StreamStateError } from '../src/eventstore/stream-state-error.js';
import { UpcastError } from '../src/eventstore/upcast-error.js';
import { Upcasters } from '../src/eventstore/upcasters.js';
import { beginningOfLog, type LogPosition } from '../src/log/position.js';
import type { Postbox } from '../src/postbox.js';
import type { InlineProjection } from '../src/projections/inline-projection.js';
import { deciderSpec } from '../src/testing/decider-spec.js';
import { type OrderCommand, type OrderEvent, OrderRuleError, type OrderState, orderDecider } from './fixtures/order-aggregate.js';
import { backends, type TestPostbox } from './support/backends.js';
import { cli } from './support/cli.js';
import { delay, waitFor } from './support/wait.js';

// Tests that need a second connection or a child process only exist for the server: PGlite is one in-process connection.
const notOnPglite = (..._test: unknown[]) => undefined;

async function count(postbox: Postbox, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await postbox.db.query<{ n: number }>(sql, params);
  return Number(rows[0]?.n);
}

const event = (n: number) => ({ type: 'Counted', data: { n } });

describe.each(backends)('event store on $name', (backend) => {
  let env: TestPostbox;
  let postbox: Postbox;
  let store: EventStore;
  let streams = 0;
  const stream = (category = 'acct') => `${category}-${++streams}`;
  const eventsOf = (streamId: string) => count(postbox, 'select count(*)::int as n from postbox.messages where stream_id = $1', [streamId]);

  beforeAll(async () => {
    env = await backend.open();
    postbox = env.postbox;
    store = postbox.eventStore();
    await postbox.db.query('create table accounts (id text primary key, opened_by text)');
  });
  afterAll(() => env.cleanup());

  it('checks a numeric expected version: appends at the version, refuses any other with the versions on the error', async () => {
    const id = stream();
    const first = await store.append(id, [event(1), event(2)], { expectedVersion: 0 });
    expect(first).toMatchObject({ previousVersion: 0, nextExpectedVersion: 2, category: 'acct' });
    expect((await store.append(id, event(3), { expectedVersion: 2 })).nextExpectedVersion).toBe(3);
    for (const stale of [2, 5, 0]) {
      const error = await store.append(id, event(99), { expectedVersion: stale }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error).toMatchObject({ code: 'POSTBOX_ERR_CONCURRENCY', retriable: true, expected: stale, actual: 3, streamId: id });
    }
    expect(await eventsOf(id)).toBe(3);
    const read = await store.readStream(id);
    expect(read.events.map((e) => e.streamPosition)).toEqual([1, 2, 3]);
  });

  it("checks 'no_stream': creates a stream, refuses an existing one", async () => {
    const id = stream();
    expect((await store.append(id, event(1), { expectedVersion: 'no_stream' })).nextExpectedVersion).toBe(1);
    const error = await store.append(id, event(2), { expectedVersion: 'no_stream' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'POSTBOX_ERR_CONCURRENCY', expected: 'no_stream', actual: 1 });
    expect(await eventsOf(id)).toBe(1);
  });

  it("checks 'stream_exists': refuses a new stream, appends to an existing one", async () => {
    const id = stream();
    const error = await store.append(id, event(1), { expectedVersion: 'stream_exists' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'POSTBOX_ERR_CONCURRENCY', expected: 'stream_exists', actual: 0 });
    expect(await store.streamExists(id)).toBe(false);
    expect(await count(postbox, 'select count(*)::int as n from postbox.streams where stream_id = $1', [id])).toBe(0);
    await store.append(id, event(1));
    expect((await store.append(id, event(2), { expectedVersion: 'stream_exists' })).nextExpectedVersion).toBe(2);
  });

  it("checks 'any': appends to new and existing streams, but never to a tombstoned or archived one", async () => {
    const id = stream();
    expect((await store.append(id, event(1), { expectedVersion: 'any' })).nextExpectedVersion).toBe(1);
    expect((await store.append(id, [event(2), event(3)])).previousVersion).toBe(1);
    await store.archive(id);
    await expect(store.append(id, event(4))).rejects.toMatchObject({ code: 'POSTBOX_ERR_STREAM_ARCHIVED', retriable: false });
    await store.restore(id);
    expect((await store.append(id, event(4))).nextExpectedVersion).toBe(4);
    await store.tombstone(id);
    await expect(store.append(id, event(5))).rejects.toBeInstanceOf(StreamStateError);
    expect(await eventsOf(id)).toBe(4);
  });

  it.each([1, 3])('accepts and refuses alike with %i event(s) per append, and a refusal never creates the stream', async (size) => {
    const events = (from: number) => Array.from({ length: size }, (_, i) => event(from + i));
    const streamRows = (id: string) => count(postbox, 'select count(*)::int as n from postbox.streams where stream_id = $1', [id]);
    const refused = (id: string, expectedVersion: ExpectedVersion) =>
      store.append(id, events(100), { expectedVersion }).catch((e: unknown) => e);

    for (const expectedVersion of [5, 'stream_exists'] as const) {
      const missing = stream();
      expect(await refused(missing, expectedVersion)).toMatchObject({
        code: 'POSTBOX_ERR_CONCURRENCY',
        expected: expectedVersion,
        actual: 0,
      });
      expect(await streamRows(missing)).toBe(0);
    }

    const id = stream();
    expect(await store.append(id, events(1), { expectedVersion: 'no_stream' })).toMatchObject({
      previousVersion: 0,
      nextExpectedVersion: size,
    });
    expect(await store.append(id, events(10), { expectedVersion: size })).toMatchObject({ previousVersion: size });
    expect(await store.append(id, events(20), { expectedVersion: 'stream_exists' })).toMatchObject({ previousVersion: 2 * size });
    expect(await store.append(id, events(30), { expectedVersion: 'any' })).toMatchObject({ nextExpectedVersion: 4 * size });
    for (const expectedVersion of ['no_stream', 0, size] as const) {
      expect(await refused(id, expectedVersion)).toMatchObject({
        code: 'POSTBOX_ERR_CONCURRENCY',
        expected: expectedVersion,
        actual: 4 * size,
      });
    }
    const positions = (await store.readStream(id)).events.map((e) => e.streamPosition);
    expect(positions).toEqual(Array.from({ length: 4 * size }, (_, i) => i + 1));

    await store.archive(id);
    expect(await refused(id, 4 * size)).toMatchObject({ code: 'POSTBOX_ERR_STREAM_ARCHIVED' });
    await store.restore(id);
    await store.tombstone(id);
    expect(await refused(id, 4 * size)).toMatchObject({ code: 'POSTBOX_ERR_STREAM_DELETED' });
    expect(await eventsOf(id)).toBe(4 * size);
  });

  it('tombstones a stream: appends are refused, reads say so, the events stay', async () => {
    const id = stream();
    await store.append(id, [event(1), event(2)]);
    await store.tombstone(id);
    for (const expectedVersion of [2, 'any', 'stream_exists'] as const) {
      await expect(store.append(id, event(3), { expectedVersion })).rejects.toMatchObject({
        code: 'POSTBOX_ERR_STREAM_DELETED',
        retriable: false,
      });
    }
    await expect(store.append(id, [], { expectedVersion: 'any' })).rejects.toMatchObject({ code: 'POSTBOX_ERR_STREAM_DELETED' });
    const read = await store.readStream(id);
    expect(read).toMatchObject({ state: 'tombstoned', version: 2 });
    expect(read.events).toHaveLength(2);
    expect(await store.streamExists(id)).toBe(false);
    await expect(store.aggregate(id, { initialState: () => 0, evolve: (s: number) => s + 1 })).rejects.toMatchObject({
      code: 'POSTBOX_ERR_STREAM_DELETED',
    });
    await expect(store.setMetadata(id, { a: 1 })).rejects.toMatchObject({ code: 'POSTBOX_ERR_STREAM_DELETED' });
    const handler = store.commandHandler({ decider: orderDecider });
    await expect(handler.handle(id, { type: 'PlaceOrder', customer: 'c' })).rejects.toMatchObject({ code: 'POSTBOX_ERR_STREAM_DELETED' });
    const never = stream();
    await store.tombstone(never);
    await expect(store.append(never, event(1), { expectedVersion: 'no_stream' })).rejects.toMatchObject({
      code: 'POSTBOX_ERR_STREAM_DELETED',
    });
    await expect(store.archive(stream())).rejects.toMatchObject({ code: 'POSTBOX_ERR_STREAM_NOT_FOUND' });
  });

  it('keeps stream metadata: set, merge, read back, without creating events', async () => {
    const id = stream();
    expect(await store.getMetadata(id)).toEqual({});
    await store.setMetadata(id, { owner: 'ops', retention: '7y' });
    await store.setMetadata(id, { owner: 'billing' }, { merge: true });
    expect(await store.getMetadata(id)).toEqual({ owner: 'billing', retention: '7y' });
    expect(await store.streamInfo(id)).toMatchObject({ version: 0, state: 'active', category: 'acct' });
    expect(await store.streamExists(id)).toBe(false);
    expect((await store.append(id, event(1), { expectedVersion: 'no_stream' })).nextExpectedVersion).toBe(1);
    await store.setMetadata(id, { owner: 'legal' });
    expect(await store.getMetadata(id)).toEqual({ owner: 'legal' });
  });

  it('reads a stream forward, backward and by range, with the headers the events carried', async () => {
    const id = stream('ledger');
    await store.append(
      id,
      Array.from({ length: 10 }, (_, i) => ({ ...event(i + 1), correlationId: 'corr-1', metadata: { source: 'test' } })),
    );
    const all = await store.readStream<{ type: 'Counted'; data: { n: number } }>(id);
    expect(all.events.map((e) => e.data.n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(all.events[0]).toMatchObject({
      streamId: id,
      category: 'ledger',
      streamPosition: 1,
      schemaVersion: 1,
      headers: { correlationId: 'corr-1', source: 'test', schemaVersion: 1 },
    });
    const range = await store.readStream(id, { from: 3, to: 6 });
    expect(range.events.map((e) => e.streamPosition)).toEqual([3, 4, 5, 6]);
    const backward = await store.readStream(id, { direction: 'backward', maxCount: 3 });
    expect(backward.events.map((e) => e.streamPosition)).toEqual([10, 9, 8]);
    const backwardFrom = await store.readStream(id, { direction: 'backward', from: 4 });
    expect(backwardFrom.events.map((e) => e.streamPosition)).toEqual([4, 3, 2, 1]);
    expect((await store.readStream(stream('ledger'))).state).toBe('no_stream');
    const mixed = stream('ledger');
    await store.append(mixed, [
      { ...event(1), correlationId: 'corr-a' },
      { ...event(2), correlationId: 'corr-b', schemaVersion: 2 },
      event(3),
    ]);
    expect((await store.readStream(mixed)).events.map((e) => [e.headers.correlationId, e.schemaVersion])).toEqual([
      ['corr-a', 1],
      ['corr-b', 2],
      [undefined, 1],
    ]);
  });

  it('refuses, through SQL, a stream append whose events are not an array of complete messages, writing nothing', async () => {
    const id = stream('sqlcall');
    const call = (events: unknown) =>
      postbox.db
        .query(`select previous_version from postbox.append($1::jsonb, $2::text, 'sqlcall', 'any')`, [JSON.stringify(events), id])
        .then(
          () => undefined,
          (error: unknown) => error as { code?: string; message: string },
        );
    const [a, b] = ['0190a6b0-0000-7000-8000-000000000001', '0190a6b0-0000-7000-8000-000000000002'];
    const headers = { schemaVersion: 1 };
    expect(await call({ id: a, type: 'T', payload: {}, headers })).toMatchObject({ code: '22023' });
    expect(await call([])).toMatchObject({ code: '22023', message: expect.stringContaining('at least one event') });
    expect(await call([{ type: 'T', payload: {}, headers }])).toMatchObject({ code: '23502' });
    expect(await call([{ id: a, payload: {}, headers }])).toMatchObject({ code: '23502' });
    expect(await call([{ id: a, type: 'T', headers }])).toMatchObject({ code: '23502' });
    expect(await call([{ id: a, type: 'T', payload: {} }])).toMatchObject({ code: '23502' });
    expect(
      await call([
        { id: a, type: 'T', payload: {}, headers },
        { id: b, type: 'T', headers },
      ]),
    ).toMatchObject({ code: '23502' });
    expect(await eventsOf(id)).toBe(0);
    expect(await count(postbox, 'select count(*)::int as n from postbox.streams where stream_id = $1', [id])).toBe(0);
    expect(
      await call([
        { id: a, type: 'T', payload: { n: 1 }, headers, topic: 'ignored', key: 'ignored' },
        { id: b, type: 'U', payload: null, headers: { schemaVersion: 2, traceId: 't-1' } },
      ]),
    ).toBeUndefined();
    const read = await store.readStream(id);
    expect(read.events.map((e) => [e.id, e.type, e.data, e.streamPosition, e.schemaVersion, e.headers.traceId, e.category])).toEqual([
      [a, 'T', { n: 1 }, 1, 1, undefined, 'sqlcall'],
      [b, 'U', null, 2, 2, 't-1', 'sqlcall'],
    ]);
  });

  it('appends to two streams, an outbox message and a business row in one caller transaction, all or nothing', async () => {
    const a = stream('acct');
    const b = stream('audit');
    const before = await count(postbox, 'select count(*)::int as n from postbox.messages');
    await expect(
      postbox.transaction(async (tx) => {
        await tx.query('insert into accounts values ($1, $2)', [a, 'alice']);
        await store.append(a, event(1), { expectedVersion: 'no_stream', tx });
        await store.append(b, [event(1), event(2)], { expectedVersion: 'no_stream', tx });
        await postbox.enqueue(tx, { topic: 'notifications', type: 'account.opened', payload: { id: a } });
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await count(postbox, 'select count(*)::int as n from postbox.messages')).toBe(before);
    expect(await count(postbox, 'select count(*)::int as n from postbox.streams where stream_id = any($1)', [[a, b]])).toBe(0);
    expect(await count(postbox, 'select count(*)::int as n from accounts where id = $1', [a])).toBe(0);

    await postbox.transaction(async (tx) => {
      await tx.query('insert into accounts values ($1, $2)', [a, 'alice']);
      await store.append(a, event(1), { expectedVersion: 'no_stream', tx });
      await store.append(b, [event(1), event(2)], { expectedVersion: 'no_stream', tx });
      await postbox.enqueue(tx, { topic: 'notifications', type: 'account.opened', payload: { id: a } });
    });
    expect(await count(postbox, 'select count(*)::int as n from postbox.messages')).toBe(before + 4);
    expect((await store.streamInfo(a)).version).toBe(1);
    expect((await store.streamInfo(b)).version).toBe(2);

    if (backend.name === 'postgres') {
      const client = new pg.Client({ connectionString: env.url });
      await client.connect();
      try {
        const c = stream('acct');
        await client.query('begin');
        await store.append(c, event(1), { tx: client });
        await postbox.enqueue(client, { topic: 'notifications', type: 'x', payload: {} });
        await client.query('rollback');
        expect(await store.streamExists(c)).toBe(false);
      } finally {
        await client.end();
      }
    }
  });

  it('rolls the whole caller transaction back when one append in it conflicts', async () => {
    const a = stream();
    await store.append(a, event(1));
    const b = stream();
    await expect(
      postbox.transaction(async (tx) => {
        await store.append(b, event(1), { tx });
        await postbox.enqueue(tx, { topic: 'notifications', type: 'x', payload: {} });
        await store.append(a, event(2), { expectedVersion: 0, tx });
      }),
    ).rejects.toBeInstanceOf(ConcurrencyError);
    expect(await store.streamExists(b)).toBe(false);
  });

  // The end of the log as stored, not as readable now: the watermark is server-wide, so a transaction
  // in another database can hold earlier rows back from readAll for a while.
  async function endOfLog(): Promise<LogPosition> {
    const { rows } = await postbox.db.query<{ tx: string; gp: string }>(
      'select transaction_id::text as tx, global_position::text as gp from postbox.messages order by transaction_id desc, global_position desc limit 1',
    );
    return rows[0] ? { transactionId: BigInt(rows[0].tx), globalPosition: BigInt(rows[0].gp) } : beginningOfLog;
  }

  it('wakes readers of a topic, stream category or not, only while a consumer group reading it holds a lease', async () => {
    const heard: string[] = [];
    const unlisten = await postbox.db.listen('postbox', (topic) => {
      heard.push(topic);
    });
    const marker = postbox.consumer({ group: 'wake-marker', topics: ['wake-marker'], pollIntervalMs: 60_000, handleBatch: async () => {} });
    try {
      await store.append(stream('unread'), event(1));
      await postbox.publish({ topic: 'unread-plain', type: 'plain', payload: {} });
      const consumer = postbox.consumer({
        group: 'wake-reader',
        topics: ['wakeful', 'wakeful-plain'],
        pollIntervalMs: 60_000,
        handleBatch: async () => {},
      });
      await consumer.start();
      await waitFor(async () => (await postbox.groupStatus('wake-reader'))[0]?.partitions[0]?.owner != null, 10_000, 'the lease');
      const id = stream('wakeful');
      await store.append(id, event(1));
      await postbox.publish({ topic: 'wakeful-plain', type: 'plain', payload: {} });
      await waitFor(() => heard.includes('wakeful') && heard.includes('wakeful-plain'), 5_000, 'the NOTIFY of both read topics');
      await waitFor(() => consumer.handled === 2, 20_000, 'the woken group to read both long before its poll');
      await consumer.stop();
      await marker.start();
      await waitFor(async () => (await postbox.groupStatus('wake-marker'))[0]?.partitions[0]?.owner != null, 10_000, 'the marker lease');
      heard.length = 0;
      await store.append(id, event(2));
      await store.append(stream('unread'), event(1));
      await postbox.publish([
        { topic: 'wakeful-plain', type: 'plain', payload: {} },
        { topic: 'unread-plain', type: 'plain', payload: {} },
      ]);
      await postbox.publish({ topic: 'wake-marker', type: 'marker', payload: {} });
      await waitFor(() => heard.includes('wake-marker'), 5_000, 'the NOTIFY of the leased marker group, sent after the others');
      expect(heard).toEqual(['wake-marker']);
    } finally {
      await marker.stop();
      await unlisten();
    }
  });

  it('reads every stream and one category in log order, skipping plain messages of the same topic', async () => {
    const after = await endOfLog();
    const x = stream('cat');
    const y = stream('dog');
    await store.append(x, [event(1), event(2)]);
    await postbox.publish({ topic: 'cat', type: 'plain', payload: {} });
    await store.append(y, event(1));
    await store.append(x, event(3));
    await waitFor(async () => (await store.readAll({ after })).events.length === 4, 10_000, 'the appends to be readable');
    const all = await store.readAll({ after });
    expect(all.events.map((e) => `${e.streamId}@${e.streamPosition}`)).toEqual([`${x}@1`, `${x}@2`, `${y}@1`, `${x}@3`]);
    const cats = await store.readCategory('cat', { after });
    expect(cats.events.map((e) => `${e.streamId}@${e.streamPosition}`)).toEqual([`${x}@1`, `${x}@2`, `${x}@3`]);
    const paged = await store.readAll({ after, limit: 2 });
    const rest = await store.readAll({ after: paged.position });
    expect([...paged.events, ...rest.events].map((e) => e.id)).toEqual(all.events.map((e) => e.id));
  });

  it('keeps the read of every stream on its partial index, in order, without a sort, before any ANALYZE', async () => {
    // The branch of postbox.read_after that reads every stream, as the function runs it.
    const plan = await postbox.transaction(async (tx) => {
      await tx.query('set local enable_seqscan = off');
      await tx.query('set local enable_bitmapscan = off');
      const { rows } = await tx.query<{ 'QUERY PLAN': string }>(
        `explain select * from postbox.messages m
         where m.stream_id is not null and (m.transaction_id, m.global_position) > ('0'::xid8, 0)
           and m.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
         order by m.transaction_id, m.global_position limit 1000`,
      );
      return rows.map((row) => row['QUERY PLAN']).join('\n');
    });
    expect(plan).toContain('messages_stream_reader_idx');
    expect(plan).not.toMatch(/Sort|Seq Scan/);
    const { rows } = await postbox.db.query<{ source: string; config: string[] }>(
      `select prosrc as source, proconfig as config from pg_proc where proname = 'read_after' and pronamespace = 'postbox'::regnamespace`,
    );
    expect(rows[0]?.source).toMatch(
      /if p_topics is null then\s+return query\s+select m\.\* from postbox\.messages m\s+where m\.stream_id is not null/,
    );
    expect(rows[0]?.source).toContain('order by m.transaction_id, m.global_position');
    expect(rows[0]?.config).toEqual(['enable_seqscan=off', 'enable_bitmapscan=off']);
  });

  (backend.name === 'postgres' ? it : notOnPglite)('never skips an append that commits after a later one', async () => {
    const start = await endOfLog();
    const early = new pg.Client({ connectionString: env.url });
    await early.connect();
    try {
      const slow = stream('race');
      const fast = stream('race');
      await early.query('begin');
      await early.query('select pg_current_xact_id()');
      await store.append(slow, event(1), { tx: early });
      await store.append(fast, event(1));
      const first = await store.readAll({ after: start });
      expect(first.events).toEqual([]);
      await early.query('commit');
      const seen: string[] = [];
      let position = first.position;
      const deadline = Date.now() + 10_000;
      while (seen.length < 2 && Date.now() < deadline) {
        const next = await store.readAll({ after: position });
        seen.push(...next.events.map((e) => e.streamId));
        position = next.position;
        if (seen.length < 2) await delay(20);
      }
      expect(seen).toEqual([slow, fast]);
    } finally {
      await early.end();
    }
  });

  it('upcasts events written in v1 when read with v3 code, and writes new events in v3', async () => {
    const id = stream('user');
    const v1 = postbox.eventStore();
    await v1.append(id, [
      { type: 'UserRegistered', data: { name: 'Ada Lovelace' } },
      { type: 'UserRenamed', data: { name: 'Ada King' } },
    ]);
    const upcasters = new Upcasters()
      .register('UserRegistered', 1, (data: { name: string }) => {
        const [first, ...rest] = data.name.split(' ');
        return { firstName: first, lastName: rest.join(' ') };
      })
      .register('UserRegistered', 2, (data: { firstName: string; lastName: string }) => ({ ...data, email: null }));
    expect(upcasters.latestVersion('UserRegistered')).toBe(3);
    const v3 = postbox.eventStore({ upcasters });
    await v3.append(id, { type: 'UserRegistered', data: { firstName: 'Grace', lastName: 'Hopper', email: 'g@navy.mil' } });
    const read = await v3.readStream(id);
    expect(read.events.map((e) => [e.type, e.schemaVersion, e.data])).toEqual([
      ['UserRegistered', 3, { firstName: 'Ada', lastName: 'Lovelace', email: null }],
      ['UserRenamed', 1, { name: 'Ada King' }],
      ['UserRegistered', 3, { firstName: 'Grace', lastName: 'Hopper', email: 'g@navy.mil' }],
    ]);
    const stored = await v1.readStream(id);
    expect(stored.events.map((e) => e.schemaVersion)).toEqual([1, 1, 3]);
    const names = await v3.aggregate(id, {
      initialState: () => [] as string[],
      evolve: (state: string[], e: { type: string; data: any }) => (e.type === 'UserRegistered' ? [...state, e.data.lastName] : state),
    });
    expect(names.state).toEqual(['Lovelace', 'Hopper']);
    const broken = postbox.eventStore({
      upcasters: new Upcasters().register('UserRenamed', 1, () => {
        throw new Error('no');
      }),
    });
    await expect(broken.readStream(id)).rejects.toBeInstanceOf(UpcastError);
  });

  it('folds a stream as of a past timestamp or global position', async () => {
    const id = stream('stock');
    const evolve = (state: number, e: { data: unknown }) => state + (e.data as { n: number }).n;
    const first = await store.append(id, [event(1), event(2)]);
    await delay(30);
    const between = new Date();
    await delay(30);
    const second = await store.append(id, [event(10), event(20)]);
    const now = await store.aggregate(id, { initialState: () => 0, evolve });
    expect(now).toMatchObject({ state: 33, version: 4 });
    const atTime = await store.aggregate(id, { initialState: () => 0, evolve }, { asOf: { timestamp: between } });
    expect(atTime).toMatchObject({ state: 3, version: 2 });
    const atPosition = await store.aggregate(
      id,
      { initialState: () => 0, evolve },
      { asOf: { globalPosition: first.position.globalPosition } },
    );
    expect(atPosition).toMatchObject({ state: 3, version: 2 });
    const atThird = await store.aggregate(
      id,
      { initialState: () => 0, evolve },
      { asOf: { globalPosition: second.globalPositions[0] as bigint } },
    );
    expect(atThird).toMatchObject({ state: 13, version: 3 });
    const before = await store.aggregate(id, { initialState: () => 0, evolve }, { asOf: { timestamp: new Date(Date.now() - 86_400_000) } });
    expect(before).toMatchObject({ state: 0, version: 0 });
  });

  it('handles commands: decides on the loaded state, appends with its version, never retries a business error', async () => {
    let decisions = 0;
    const handler = store.commandHandler({
      decider: {
        ...orderDecider,
        decide: (command: OrderCommand, state: OrderState) => {
          decisions += 1;
          return orderDecider.decide(command, state);
        },
      },
      name: 'order',
    });
    const id = stream('order');
    const placed = await handler.handle(id, { type: 'PlaceOrder', customer: 'c-1' });
    expect(placed).toMatchObject({ previousVersion: 0, nextExpectedVersion: 1, duplicate: false, attempts: 1 });
    expect(placed.state).toMatchObject({ status: 'placed', customer: 'c-1' });
    await handler.handle(id, { type: 'AddItem', sku: 'a', quantity: 2, price: 5 });
    await expect(handler.handle(id, { type: 'AddItem', sku: 'b', quantity: 1, price: 1 }, { expectedVersion: 1 })).rejects.toMatchObject({
      code: 'POSTBOX_ERR_CONCURRENCY',
      expected: 1,
      actual: 2,
    });
    decisions = 0;
    await expect(handler.handle(id, { type: 'PlaceOrder', customer: 'c-2' })).rejects.toBeInstanceOf(OrderRuleError);
    expect(decisions).toBe(1);
    const shipped = await handler.handle(id, { type: 'ShipOrder', trackingId: 't-1' });
    expect(shipped.state).toMatchObject({ status: 'shipped', items: 2, total: 10 });
    expect(shipped.events).toEqual([{ type: 'OrderShipped', data: { trackingId: 't-1' } }]);
    const metrics = await store.metrics.registry.getMetricsAsJSON();
    const commands = metrics.find((m) => m.name === 'commands_total')?.values ?? [];
    expect(commands).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ labels: { type: 'PlaceOrder', status: 'rejected' }, value: 1 }),
        expect.objectContaining({ labels: { type: 'ShipOrder', status: 'success' }, value: 1 }),
        expect.objectContaining({ labels: { type: 'AddItem', status: 'conflict' }, value: 1 }),
      ]),
    );
    expect(metrics.find((m) => m.name === 'events_appended_total')?.values[0]?.value).toBeGreaterThan(0);
  });

  it('is idempotent by command id: the same command twice appends once and returns the first result', async () => {
    const handler = store.commandHandler({ decider: orderDecider, name: 'order' });
    const id = stream('order');
    await handler.handle(id, { type: 'PlaceOrder', customer: 'c' });
    const add = { type: 'AddItem', sku: 's', quantity: 1, price: 3 } as const;
    const first = await handler.handle(id, add, { commandId: 'cmd-add-1' });
    const again = await handler.handle(id, add, { commandId: 'cmd-add-1' });
    expect(again).toMatchObject({
      duplicate: true,
      previousVersion: first.previousVersion,
      nextExpectedVersion: first.nextExpectedVersion,
      eventIds: first.eventIds,
      events: [],
    });
    expect(again.globalPositions).toEqual(first.globalPositions);
    expect(await eventsOf(id)).toBe(2);
    await handler.handle(id, add, { commandId: 'cmd-add-2' });
    expect(await eventsOf(id)).toBe(3);
    await postbox.db.query(`update postbox.command_results set expires_at = now() - interval '1 second' where command_id = 'cmd-add-1'`);
    expect((await handler.handle(id, add, { commandId: 'cmd-add-1' })).duplicate).toBe(false);
    expect(await eventsOf(id)).toBe(4);
    expect(await store.pruneCommandResults()).toBe(0);
  });

  it('prunes expired command results on the maintenance timer, in batches, and keeps live ones', async () => {
    const expired = (prefix: string, n: number) =>
      postbox.db.query(
        `insert into postbox.command_results (command_id, stream_id, result, expires_at)
         select $1 || g, 'prune-1', '{}'::jsonb, now() - interval '1 minute' from generate_series(1, $2::int) g`,
        [prefix, n],
      );
    const left = (prefix: string) =>
      count(postbox, 'select count(*)::int as n from postbox.command_results where command_id like $1', [`${prefix}%`]);
    await expired('prune-direct-', 7);
    expect(await store.pruneCommandResults({ batchSize: 3 })).toBe(7);
    await expect(store.pruneCommandResults({ batchSize: 0 })).rejects.toMatchObject({ code: 'POSTBOX_ERR_BAD_OPTION' });

    await expired('prune-timer-', 8);
    await postbox.db.query(
      `insert into postbox.command_results (command_id, stream_id, result, expires_at)
       select 'prune-live-' || g, 'prune-1', '{}'::jsonb, now() + interval '1 hour' from generate_series(1, 2) g`,
    );
    expect(() => postbox.startMaintenance({ commandResults: { intervalMs: 0 } })).toThrow(
      expect.objectContaining({ code: 'POSTBOX_ERR_BAD_OPTION' }),
    );
    postbox.startMaintenance({ commandResults: { intervalMs: 20, batchSize: 3 } });
    await waitFor(async () => (await left('prune-timer-')) === 0, 10_000, 'maintenance to prune the expired results');
    expect(await left('prune-live-')).toBe(2);

    postbox.startMaintenance({ commandResults: false });
    await expired('prune-after-stop-', 1);
    await delay(200);
    expect(await left('prune-after-stop-')).toBe(1);
    expect(await store.pruneCommandResults()).toBe(1);
  });

  (backend.name === 'postgres' ? it : notOnPglite)('prunes expired command results once from the command line', async () => {
    await postbox.db.query(
      `insert into postbox.command_results (command_id, stream_id, result, expires_at)
       select 'prune-cli-' || g, 'prune-1', '{}'::jsonb, now() - interval '1 minute' from generate_series(1, 5) g`,
    );
    const run = await cli(['command-results', 'prune', '--batch-size', '2'], { DATABASE_URL: env.url });
    expect(run.stderr).toBe('');
    expect(run).toMatchObject({ code: 0, stdout: '5\n' });
    const bad = await cli(['command-results', 'prune', '--batch-size', '0'], { DATABASE_URL: env.url });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^postbox: POSTBOX_ERR_USAGE: /);
  });

  it('runs inline projections in the append transaction: a failing one rolls the append back', async () => {
    await postbox.db.query('create table account_counts (stream_id text primary key, events int not null)');
    let fail = false;
    const counts: InlineProjection = {
      name: 'account-counts',
      categories: ['inline'],
      async handle(events, { tx }) {
        if (fail) throw new Error('read model refused');
        await tx.query(
          `insert into account_counts values ($1, $2) on conflict (stream_id) do update set events = account_counts.events + excluded.events`,
          [events[0]?.streamId, events.length],
        );
      },
    };
    const inline = postbox.eventStore({ inlineProjections: [counts] });
    const id = stream('inline');
    await inline.append(id, [event(1), event(2)]);
    const order = stream('inline');
    await inline.commandHandler({ decider: orderDecider }).handle(order, { type: 'PlaceOrder', customer: 'x' });
    expect(await count(postbox, 'select events as n from account_counts where stream_id = $1', [id])).toBe(2);
    expect(await count(postbox, 'select events as n from account_counts where stream_id = $1', [order])).toBe(1);
    fail = true;
    await expect(inline.append(id, event(3))).rejects.toThrow('read model refused');
    expect(await eventsOf(id)).toBe(2);
    await inline.append(stream('other'), event(1));
  });

  it('tests deciders with given/when/then', async () => {
    const spec = deciderSpec(orderDecider);
    const placed: OrderEvent = { type: 'OrderPlaced', data: { customer: 'c' } };
    await spec
      .given([placed])
      .when({ type: 'AddItem', sku: 'a', quantity: 1, price: 2 })
      .then([{ type: 'ItemAdded', data: { sku: 'a', quantity: 1, price: 2 } }]);
    await spec.given([]).when({ type: 'ShipOrder', trackingId: 't' }).then(OrderRuleError);
    await spec.given([placed]).when({ type: 'ShipOrder', trackingId: 't' }).then({ code: 'POSTBOX_ERR_BAD_OPTION' });
    await expect(spec.given([]).when({ type: 'PlaceOrder', customer: 'c' }).then([])).rejects.toThrow();
    await expect(spec.given([placed]).when({ type: 'PlaceOrder', customer: 'c' }).then([placed])).rejects.toThrow(
      'The order was placed already.',
    );
  });
});
