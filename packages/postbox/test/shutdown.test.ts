import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Postbox } from '../src/postbox.js';
import { exitOnSignals } from '../src/router/shutdown.js';
import { exited, spawnTs, waitForLine } from './support/child.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { delay, waitFor } from './support/wait.js';

describe('graceful shutdown', () => {
  let database: TestDatabase;
  let postbox: Postbox;

  beforeAll(async () => {
    database = await createTestDatabase();
    postbox = await Postbox.create({ databaseUrl: database.url });
    await postbox.db.query('create table handled (message_id uuid not null, pid int not null)');
  });
  afterAll(async () => {
    await postbox.close(2_000);
    await database.drop();
  });

  it('handles every message exactly once across SIGTERMs in the middle of batches', async () => {
    const total = 1_000;
    await postbox.publish(Array.from({ length: total }, (_, i) => ({ topic: 'work', type: 't', key: `k${i % 7}`, payload: i })));
    const deadlineMs = 5_000;
    const count = async () => Number((await postbox.db.query<{ n: number }>('select count(*)::int as n from handled')).rows[0]?.n);
    const exitTimes: number[] = [];
    const interruptions = 6;
    for (let round = 0; round <= interruptions; round++) {
      const child = spawnTs('fixtures/router-process.ts', { DATABASE_URL: database.url, DEADLINE_MS: String(deadlineMs) });
      await waitForLine(child, 'started');
      if (round === interruptions) {
        await waitFor(async () => (await count()) >= total, 60_000, 'the last process to finish');
      } else {
        // Let it get into a batch, then interrupt at a random moment.
        await delay(50 + Math.random() * 300);
      }
      const signalledAt = Date.now();
      child.kill('SIGTERM');
      expect(await exited(child)).toBe(0);
      exitTimes.push(Date.now() - signalledAt);
    }
    const { rows } = await postbox.db.query<{ n: number; ids: number; processes: number }>(
      'select count(*)::int as n, count(distinct message_id)::int as ids, count(distinct pid)::int as processes from handled',
    );
    expect(rows[0]?.n).toBe(total);
    expect(rows[0]?.ids).toBe(total);
    expect(rows[0]?.processes).toBeGreaterThan(1);
    expect(Math.max(...exitTimes)).toBeLessThan(deadlineMs + 2_000);
  }, 180_000);

  it('exits at once on a second signal', async () => {
    const child = spawnTs('fixtures/router-process.ts', { DATABASE_URL: database.url, HANDLER_DELAY_MS: '10000', DEADLINE_MS: '60000' });
    await waitForLine(child, 'started');
    await postbox.publish({ topic: 'work', type: 't', payload: 'slow' });
    await waitFor(
      async () => {
        // Only this test's database: other test files run beside this one on the same server.
        const { rows } = await postbox.db.query<{ n: number }>(
          'select count(*)::int as n from pg_stat_activity where datname = current_database() and state = $1',
          ['idle in transaction'],
        );
        return Number(rows[0]?.n) > 0;
      },
      10_000,
      'the slow handler',
    );
    child.kill('SIGTERM');
    await delay(200);
    const started = Date.now();
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(1);
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe('exitOnSignals', () => {
  it('exits 1 when the shutdown has not settled by its hard limit, and not before', async () => {
    const codes: number[] = [];
    const remove = exitOnSignals(() => new Promise<boolean>(() => undefined), {
      signals: ['SIGUSR2'],
      exit: (code) => codes.push(code),
      hardLimitMs: 300,
    });
    try {
      process.emit('SIGUSR2', 'SIGUSR2');
      await delay(150);
      expect(codes).toEqual([]);
      await waitFor(() => codes.length > 0, 3_000, 'the hard limit');
      expect(codes).toEqual([1]);
    } finally {
      remove();
    }
  });

  it('exits with the shutdown result when it settles first, and the hard limit never fires', async () => {
    const codes: number[] = [];
    const remove = exitOnSignals(
      async () => {
        await delay(50);
        return true;
      },
      { signals: ['SIGUSR2'], exit: (code) => codes.push(code), hardLimitMs: 200 },
    );
    try {
      process.emit('SIGUSR2', 'SIGUSR2');
      await delay(500);
      expect(codes).toEqual([0]);
    } finally {
      remove();
    }
  });
});
