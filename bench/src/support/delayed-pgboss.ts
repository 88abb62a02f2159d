import PgBoss from 'pg-boss';
import { type DelayedSystem, type DueItem, writeChunk } from './delayed-system.js';
import { chunks } from './messages.js';
import { sleep } from './timing.js';
import { until } from './until.js';

/**
 * pg-boss 10 finds due jobs only by polling: each work() call adds a worker that fetches up to
 * batchSize jobs whose startAfter has passed, then waits out the rest of pollingIntervalSeconds
 * (at least 0.5, its smallest). Five workers of 1,000 jobs, as in the partitions benchmark, started
 * a fifth of the interval apart so that together they look every 100 ms; priority off.
 */
const workers = 5;
const batchSize = 1_000;
const pollingIntervalSeconds = 0.5;

export function pgBossDelayed(url: string, name: string): DelayedSystem {
  const boss = new PgBoss({ connectionString: url });
  boss.on('error', (error) => console.error('pg-boss:', error));
  return {
    label: `pg-boss 10, startAfter (${workers} work() × batch ${batchSize}, polling 0.5 s, staggered)`,
    async start(onHandled) {
      await boss.start();
      await boss.createQueue(name);
      for (let i = 0; i < workers; i++) {
        if (i > 0) await sleep((pollingIntervalSeconds * 1000) / workers);
        await boss.work<DueItem>(name, { batchSize, pollingIntervalSeconds, priority: false }, async (jobs) => {
          for (const job of jobs) onHandled(job.data);
        });
      }
    },
    async write(items) {
      for (const batch of chunks(items.length, writeChunk, (k) => items[k] as DueItem)) {
        await boss.insert(batch.map((item) => ({ name, data: item, startAfter: new Date(item.due) })));
      }
    },
    async stop() {
      // Completions are sent without waiting: stopping with some still queued for a pool connection
      // would leave a worker waiting for ever on the closed pool, and the process alive.
      await until(async () => (await boss.getQueueSize(name, { before: 'completed' })) === 0, 'pg-boss to complete its jobs', 60_000);
      await boss.stop({ graceful: true, wait: true, timeout: 10_000 });
    },
  };
}
