import { Logger, makeWorkerUtils, type Runner, run, type WorkerUtils } from 'graphile-worker';
import { type DelayedSystem, type DueItem, writeChunk } from './delayed-system.js';
import { chunks } from './messages.js';

/**
 * graphile-worker 0.17 with the settings of its performance page (concurrentJobs 24, maxPoolSize 25,
 * localQueue 500, batched completion). LISTEN/NOTIFY wakes it when a job is inserted, not when a
 * job's run_at comes: jobs due later are found by polling (its docs: pollInterval is "for jobs
 * scheduled in the future"), so pollInterval is cut from its default 2,000 ms to 100 ms.
 */
const settings = { concurrentJobs: 24, maxPoolSize: 25, localQueue: 500, pollIntervalMs: 100 };

export function graphileDelayed(url: string, name: string): DelayedSystem {
  let utils: WorkerUtils | undefined;
  let runner: Runner | undefined;
  return {
    label: `graphile-worker 0.17, run_at (concurrency ${settings.concurrentJobs}, local queue ${settings.localQueue}, pollInterval ${settings.pollIntervalMs} ms)`,
    async start(onHandled) {
      utils = await makeWorkerUtils({ connectionString: url });
      await utils.migrate();
      runner = await run({
        noHandleSignals: true,
        logger: new Logger(() => () => {}),
        taskList: { [name]: async (payload) => onHandled(payload as DueItem) },
        preset: {
          worker: {
            connectionString: url,
            concurrentJobs: settings.concurrentJobs,
            maxPoolSize: settings.maxPoolSize,
            localQueue: { size: settings.localQueue },
            pollInterval: settings.pollIntervalMs,
            completeJobBatchDelay: 0,
            failJobBatchDelay: 0,
          },
        },
      });
    },
    async write(items) {
      const live = utils as WorkerUtils;
      for (const batch of chunks(items.length, writeChunk, (k) => items[k] as DueItem)) {
        await live.addJobs(batch.map((item) => ({ identifier: name, payload: item, runAt: new Date(item.due) })));
      }
    },
    async stop() {
      await runner?.stop();
      await utils?.release();
    },
  };
}
