import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Postbox } from '../src/postbox.js';
import { exited, spawnTs, waitForLine } from './support/child.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { waitFor } from './support/wait.js';

describe('lease takeover across processes', () => {
  let database: TestDatabase;
  let postbox: Postbox;

  beforeAll(async () => {
    database = await createTestDatabase();
    postbox = await Postbox.create({ databaseUrl: database.url });
    await postbox.db.query('create table handled (message_id uuid not null, owner text not null)');
  });
  afterAll(async () => {
    await postbox.close(2_000);
    await database.drop();
  });

  it('continues from the checkpoint within the lease time after the active process is killed', async () => {
    const leaseTtlMs = 1_500;
    const env = { DATABASE_URL: database.url, GROUP: 'takeover', TOPIC: 'jobs', LEASE_TTL_MS: String(leaseTtlMs) };
    const active = spawnTs('fixtures/consumer-process.ts', { ...env, OWNER: 'first' });
    await waitForLine(active, 'active');
    const standby = spawnTs('fixtures/consumer-process.ts', { ...env, OWNER: 'second' });
    try {
      await postbox.publish(Array.from({ length: 300 }, (_, i) => ({ topic: 'jobs', type: 't', payload: i })));
      await waitFor(async () => (await postbox.groupStatus('takeover'))[0]?.lagMessages === 0, 10_000, 'the first process to catch up');

      active.kill('SIGKILL');
      await exited(active);
      const killedAt = Date.now();
      await postbox.publish(Array.from({ length: 300 }, (_, i) => ({ topic: 'jobs', type: 't', payload: 300 + i })));
      await waitForLine(standby, 'active', 10_000);
      const tookOverAfterMs = Date.now() - killedAt;
      await waitFor(async () => (await postbox.groupStatus('takeover'))[0]?.lagMessages === 0, 10_000, 'the standby to catch up');

      expect(tookOverAfterMs).toBeLessThan(leaseTtlMs + 2_000);
      const { rows } = await postbox.db.query<{ owner: string; n: number; ids: number }>(
        'select owner, count(*)::int as n, count(distinct message_id)::int as ids from handled group by owner order by owner',
      );
      expect(rows).toEqual([
        { owner: 'first', n: 300, ids: 300 },
        { owner: 'second', n: 300, ids: 300 },
      ]);
      const [status] = await postbox.groupStatus('takeover');
      expect(status?.partitions[0]?.owner).toBe('second');
    } finally {
      active.kill('SIGKILL');
      standby.kill('SIGKILL');
      await Promise.all([exited(active), exited(standby)]);
    }
  });

  it("hands the lease to a standby at once when the holder stops, not at the standby's next check", async () => {
    // A long lease: the standby checks every 10 s, so only the hand-back notice can make it this quick.
    const leaseTtlMs = 30_000;
    const other = await Postbox.create({ databaseUrl: database.url });
    const seen: string[] = [];
    const consumerOn = (box: Postbox, owner: string) =>
      box.consumer({
        group: 'handover',
        topics: ['handover-jobs'],
        owner,
        leaseTtlMs,
        handleBatch: async (messages) => {
          for (const message of messages) seen.push(`${owner}:${String(message.payload)}`);
        },
      });
    const first = consumerOn(postbox, 'first');
    const second = consumerOn(other, 'second');
    try {
      await first.start();
      await waitFor(() => first.state === 'active', 5_000, 'the first consumer to take the lease');
      await second.start();
      await waitFor(() => second.state === 'standby', 5_000, 'the second consumer to stand by');
      await postbox.publish({ topic: 'handover-jobs', type: 't', payload: 'before' });
      await waitFor(() => seen.includes('first:before'), 5_000, 'the first consumer to handle a message');

      const stoppedAt = Date.now();
      expect(await first.stop()).toBe(true);
      await waitFor(() => second.state === 'active', 5_000, 'the standby to take the lease');
      expect(Date.now() - stoppedAt).toBeLessThan(2_000);
      await postbox.publish({ topic: 'handover-jobs', type: 't', payload: 'after' });
      await waitFor(() => seen.includes('second:after'), 5_000, 'the second consumer to handle a message');
      expect(seen).toEqual(['first:before', 'second:after']);
    } finally {
      await first.stop(2_000);
      await second.stop(2_000);
      await other.close(2_000);
    }
  });
});
