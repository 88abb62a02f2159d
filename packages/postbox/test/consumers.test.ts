import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Consumer } from '../src/consumers/consumer.js';
import type { LogMessage } from '../src/log/message.js';
import type { Postbox } from '../src/postbox.js';
import { backends, type TestPostbox } from './support/backends.js';
import { delay, waitFor } from './support/wait.js';

function collector() {
  const seen: LogMessage[] = [];
  return { seen, handleBatch: async (messages: LogMessage[]) => void seen.push(...messages) };
}

describe.each(backends)('consumer groups on $name', (backend) => {
  let env: TestPostbox;
  let postbox: Postbox;
  const running: Consumer[] = [];

  function consumer(options: Parameters<Postbox['consumer']>[0]): Consumer {
    const created = postbox.consumer({ pollIntervalMs: 100, leaseTtlMs: 1_000, retryDelayMs: 20, ...options });
    running.push(created);
    return created;
  }

  beforeAll(async () => {
    env = await backend.open();
    postbox = env.postbox;
  });
  afterAll(async () => {
    await Promise.all(running.map((c) => c.stop(2_000)));
    await env.cleanup();
  });

  it('delivers in publish order and resumes from the checkpoint after a restart', async () => {
    await postbox.publish(Array.from({ length: 25 }, (_, i) => ({ topic: 'resume', type: 't', payload: { i } })));
    const first = collector();
    const a = consumer({ group: 'resume-g', topics: ['resume'], batchSize: 10, ...first });
    await a.start();
    await waitFor(() => first.seen.length === 25, 10_000, '25 messages');
    expect(first.seen.map((m) => (m.payload as { i: number }).i)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(await a.stop()).toBe(true);

    await postbox.publish([{ topic: 'resume', type: 't', payload: { i: 25 } }]);
    const second = collector();
    const b = consumer({ group: 'resume-g', topics: ['resume'], ...second });
    await b.start();
    await waitFor(() => second.seen.length === 1, 10_000, 'the message after the checkpoint');
    await delay(200);
    expect(second.seen.map((m) => (m.payload as { i: number }).i)).toEqual([25]);
  });

  it('wakes an idle group on NOTIFY well before the poll interval', async () => {
    const got = collector();
    const c = consumer({ group: 'wake-g', topics: ['wake'], pollIntervalMs: 60_000, ...got });
    await c.start();
    await waitFor(() => c.state === 'active', 5_000, 'the lease');
    await delay(100);
    const started = Date.now();
    await postbox.publish({ topic: 'wake', type: 't', payload: 1 });
    await waitFor(() => got.seen.length === 1, 5_000, 'the woken consumer');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('reads several topics of one group in commit order', async () => {
    await postbox.publish([
      { topic: 'multi-a', type: 't', payload: 1 },
      { topic: 'multi-b', type: 't', payload: 2 },
    ]);
    await postbox.publish({ topic: 'multi-b', type: 't', payload: 3 });
    await postbox.publish({ topic: 'multi-a', type: 't', payload: 4 });
    await postbox.publish({ topic: 'multi-c', type: 't', payload: 'other topic' });
    const got = collector();
    await consumer({ group: 'multi-g', topics: ['multi-b', 'multi-a'], batchSize: 3, ...got }).start();
    await waitFor(() => got.seen.length === 4, 10_000, 'four messages');
    expect(got.seen.map((m) => m.payload)).toEqual([1, 2, 3, 4]);
  });

  it('starts a latest group after the messages already published', async () => {
    await postbox.publish({ topic: 'latest', type: 't', payload: 'old' });
    const got = collector();
    const c = consumer({ group: 'latest-g', topics: ['latest'], startFrom: 'latest', ...got });
    await c.start();
    await waitFor(() => c.state === 'active', 5_000, 'the lease');
    await postbox.publish({ topic: 'latest', type: 't', payload: 'new' });
    await waitFor(() => got.seen.length >= 1, 5_000, 'the new message');
    await delay(200);
    expect(got.seen.map((m) => m.payload)).toEqual(['new']);
  });

  it('commits the handler writes and the checkpoint together in transactional mode', async () => {
    await postbox.db.query('create table effects (message_id uuid not null, value int not null)');
    await postbox.publish(Array.from({ length: 5 }, (_, i) => ({ topic: 'tx', type: 't', payload: i })));
    let failures = 0;
    const c = consumer({
      group: 'tx-g',
      topics: ['tx'],
      transactional: true,
      batchSize: 5,
      handleBatch: async (messages, ctx) => {
        for (const m of messages) await ctx.tx?.query('insert into effects values ($1, $2)', [m.id, m.payload]);
        if (failures++ < 2) throw new Error('fails twice after writing');
      },
    });
    await c.start();
    await waitFor(async () => c.handled === 5, 10_000, 'the batch to commit');
    const { rows } = await postbox.db.query<{ n: number; distinct_ids: number }>(
      'select count(*)::int as n, count(distinct message_id)::int as distinct_ids from effects',
    );
    expect(rows[0]).toEqual({ n: 5, distinct_ids: 5 });
    const [status] = await postbox.groupStatus('tx-g');
    expect(status?.lagMessages).toBe(0);
    expect(failures).toBe(3);
  });

  it('retries a failing handler with backoff and records the error on the group', async () => {
    await postbox.publish({ topic: 'flaky', type: 't', payload: 'x' });
    let calls = 0;
    const errors: unknown[] = [];
    const c = consumer({
      group: 'flaky-g',
      topics: ['flaky'],
      onError: (e) => errors.push(e),
      handleMessage: async () => {
        calls += 1;
        if (calls < 3) throw new Error(`attempt ${calls} failed`);
      },
    });
    await c.start();
    await waitFor(
      async () => (await postbox.groupStatus('flaky-g'))[0]?.lastError === 'attempt 1 failed' || calls >= 3,
      5_000,
      'the error',
    );
    await waitFor(() => c.handled === 1, 10_000, 'the third attempt');
    expect(calls).toBe(3);
    expect(errors).toHaveLength(2);
    const [status] = await postbox.groupStatus('flaky-g');
    expect(status?.lastError).toBeNull();
  });

  it('lets one consumer of a group read while another stands by, then takes over on stop', async () => {
    const a = collector();
    const b = collector();
    const first = consumer({ group: 'lease-g', topics: ['lease'], ...a });
    const second = consumer({ group: 'lease-g', topics: ['lease'], ...b });
    await first.start();
    await waitFor(() => first.state === 'active', 5_000, 'the first lease');
    await second.start();
    await delay(300);
    expect(second.state).toBe('standby');
    await postbox.publish({ topic: 'lease', type: 't', payload: 1 });
    await waitFor(() => a.seen.length === 1, 5_000, 'the first reader');
    await first.stop();
    await postbox.publish({ topic: 'lease', type: 't', payload: 2 });
    await waitFor(() => b.seen.length === 1, 5_000, 'the standby to take over');
    expect(b.seen.map((m) => m.payload)).toEqual([2]);
    expect(a.seen.map((m) => m.payload)).toEqual([1]);
  });

  it('hands the lease back when stopped while taking it', async () => {
    for (let round = 0; round < 5; round++) {
      const quick = consumer({ group: 'quick-stop-g', topics: ['quick'], leaseTtlMs: 60_000, handleBatch: async () => undefined });
      await quick.start();
      await quick.stop();
    }
    const next = consumer({ group: 'quick-stop-g', topics: ['quick'], leaseTtlMs: 60_000, handleBatch: async () => undefined });
    await next.start();
    await waitFor(() => next.state === 'active', 3_000, 'the lease to be free');
  });

  it('rolls back a transactional batch whose lease was taken meanwhile', async () => {
    await postbox.db.query('create table fenced (message_id uuid not null)');
    await postbox.publish({ topic: 'fence', type: 't', payload: 1 });
    let entered = false;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const c = consumer({
      group: 'fence-g',
      topics: ['fence'],
      transactional: true,
      leaseTtlMs: 60_000,
      handleBatch: async (messages, ctx) => {
        for (const m of messages) await ctx.tx?.query('insert into fenced values ($1)', [m.id]);
        entered = true;
        await gate;
      },
    });
    await c.start();
    await waitFor(() => entered, 5_000, 'the handler');
    if (backend.name === 'postgres') {
      // Another process takes the group over while the batch is in flight.
      await postbox.db.query(
        `update postbox.group_partitions set lease_owner = 'other', lease_expires_at = now() + interval '1 hour' where group_name = 'fence-g'`,
      );
    }
    release();
    if (backend.name === 'postgres') {
      await waitFor(() => c.state === 'standby', 5_000, 'the consumer to notice');
      const { rows } = await postbox.db.query<{ n: number }>('select count(*)::int as n from fenced');
      expect(rows[0]?.n).toBe(0);
      const [status] = await postbox.groupStatus('fence-g');
      expect(status?.lagMessages).toBe(1);
      expect(status?.partitions[0]?.owner).toBe('other');
    } else {
      await waitFor(() => c.handled === 1, 5_000, 'the batch');
    }
  });
});

describe.each(backends)('ephemeral groups and retention on $name', (backend) => {
  let env: TestPostbox;
  let postbox: Postbox;
  beforeAll(async () => {
    env = await backend.open();
    postbox = env.postbox;
  });
  afterAll(() => env.cleanup());

  it('cleans up only stale, unleased ephemeral groups', async () => {
    const groups = [
      ['pod_stale', true, '-2 days', null],
      ['pod_fresh', true, '-1 minute', null],
      ['pod_stale_but_leased', true, '-2 days', '+1 hour'],
      ['durable_stale', false, '-2 days', null],
    ] as const;
    for (const [name, ephemeral, seen, lease] of groups) {
      await postbox.db.query(
        `with g as (insert into postbox.consumer_groups (group_name, topics, ephemeral, last_seen_at)
                    values ($1, '{t}', $2, now() + $3::interval) returning group_name)
         insert into postbox.group_partitions (group_name, partition, lease_owner, lease_expires_at)
         select group_name, 0, case when $4::text is null then null else 'someone' end, now() + $4::interval from g`,
        [name, ephemeral, seen, lease],
      );
    }
    expect(await postbox.cleanupZombieGroups(24 * 3_600_000)).toEqual(['pod_stale']);
    const { rows } = await postbox.db.query<{ group_name: string }>('select group_name from postbox.consumer_groups order by 1');
    expect(rows.map((r) => r.group_name)).toEqual(['durable_stale', 'pod_fresh', 'pod_stale_but_leased']);
  });

  it('marks a group created with ephemeral: true and keeps its last_seen_at fresh', async () => {
    const c = postbox.consumer({ group: 'svc_instance_1', topics: ['e'], ephemeral: true, leaseTtlMs: 300, handleBatch: async () => {} });
    await c.start();
    await postbox.db.query(
      `update postbox.consumer_groups set last_seen_at = now() - interval '3 days' where group_name = 'svc_instance_1'`,
    );
    await waitFor(
      async () => {
        const { rows } = await postbox.db.query<{ fresh: boolean }>(
          `select last_seen_at > now() - interval '1 minute' as fresh from postbox.consumer_groups where group_name = 'svc_instance_1' and ephemeral`,
        );
        return rows[0]?.fresh === true;
      },
      5_000,
      'the heartbeat',
    );
    await c.stop();
  });

  it('deletes old plain messages only once every group has passed them, and keeps stream rows', async () => {
    await postbox.publish(Array.from({ length: 4 }, (_, i) => ({ topic: 'ret', type: 't', payload: i })));
    await postbox.publish({ topic: 'ret-other', type: 't', payload: 'x' });
    await postbox.db.query(`insert into postbox.messages (message_id, topic, type, payload, stream_id, stream_position)
      values (gen_random_uuid(), 'ret', 'e', '{}', 'order-1', 1)`);
    await postbox.db.query(`update postbox.messages set created_at = now() - interval '10 days'`);
    await postbox.publish({ topic: 'ret', type: 't', payload: 'recent' });
    // A group that has read only the first two of the old messages.
    const { rows } = await postbox.db.query<{ transaction_id: string; global_position: string }>(
      `select transaction_id::text, global_position::text from postbox.messages where topic = 'ret' and stream_id is null order by global_position limit 1 offset 1`,
    );
    await postbox.db.query(
      `with g as (insert into postbox.consumer_groups (group_name, topics) values ('slow', '{ret}') returning group_name)
       insert into postbox.group_partitions (group_name, partition, checkpoint_transaction_id, checkpoint_position)
       select group_name, 0, $1::xid8, $2 from g`,
      [rows[0]?.transaction_id, rows[0]?.global_position],
    );
    const deleted = await postbox.applyRetention({ olderThanMs: 7 * 86_400_000, batchSize: 1 });
    expect(deleted).toBe(3);
    const left = await postbox.db.query<{ payload: unknown; stream_id: string | null; topic: string }>(
      'select payload, stream_id, topic from postbox.messages order by global_position',
    );
    expect(left.rows).toEqual([
      { payload: 2, stream_id: null, topic: 'ret' },
      { payload: 3, stream_id: null, topic: 'ret' },
      { payload: {}, stream_id: 'order-1', topic: 'ret' },
      { payload: 'recent', stream_id: null, topic: 'ret' },
    ]);
  });
});
