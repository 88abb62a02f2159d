/**
 * One worker process of the partitions benchmark (bench/src/partitions.ts starts it with an IPC
 * channel). It sets up its system, says `ready`, and on `go` handles messages with a fixed CPU
 * cost each, reporting how many it has handled; on `stop` it shuts down and sends back its CPU time
 * and, for every message it handled, the message's sequence number and when its handling started,
 * so that the parent can check per-key order across processes.
 */
import { Logger, type Runner, run } from 'graphile-worker';
import PgBoss from 'pg-boss';
import { Postbox } from 'postbox';
import { burn } from './cpu-work.js';

export type WorkerSystem = 'limit' | 'postbox' | 'pg-boss' | 'graphile-worker';

export interface WorkerConfig {
  system: WorkerSystem;
  url: string;
  /** The topic and group (Postbox), queue (pg-boss) or task identifier (graphile-worker) of the run. */
  name: string;
  /** Iterations of burn() per message. */
  iterations: number;
  /** limit: the messages this process burns, numbered from `first`. */
  count: number;
  first: number;
  /** Postbox: the group's partitions. */
  partitions: number;
  /** pg-boss: work() calls (workers) in this process and jobs fetched per worker. */
  pgBossWorkers: number;
  pgBossBatchSize: number;
  /** graphile-worker: concurrentJobs, maxPoolSize and localQueue.size. */
  graphileConcurrency: number;
  graphilePoolSize: number;
  graphileLocalQueue: number;
}

export interface WorkPayload {
  seq: number;
  key: string;
}

export type ToParent =
  | { type: 'ready' }
  | { type: 'progress'; handled: number }
  | { type: 'done'; handled: number; cpuMs: number; seqs: number[]; startedAt: number[] }
  | { type: 'failed'; error: string };

export type ToWorker = { type: 'go' } | { type: 'stop' };

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
const send = (message: ToParent) => process.send?.(message);

const seqs: number[] = [];
const startedAt: number[] = [];
let handledInHandler = 0;

/** The handler's work for one message: note when it starts, then burn the fixed CPU time. */
function handle(seq: number): void {
  seqs.push(seq);
  startedAt.push(performance.timeOrigin + performance.now());
  burn(config.iterations);
  handledInHandler += 1;
}

interface System {
  start(): Promise<void>;
  /** Messages handled; for Postbox, handled and checkpointed. */
  handled(): number;
  stop(): Promise<void>;
}

async function setUp(): Promise<System> {
  switch (config.system) {
    case 'limit':
      return {
        async start() {
          for (let i = 0; i < config.count; i++) handle(config.first + i);
        },
        handled: () => handledInHandler,
        async stop() {},
      };
    case 'postbox': {
      const postbox = await Postbox.create({ databaseUrl: config.url, migrate: 'check' });
      const consumer = postbox.consumer({
        group: config.name,
        topics: [config.name],
        partitions: config.partitions,
        handleBatch: async (messages) => {
          for (const message of messages) handle((message.payload as WorkPayload).seq);
        },
        onError: (error) => console.error('postbox consumer:', error),
      });
      return {
        start: () => consumer.start(),
        handled: () => consumer.handled,
        async stop() {
          await consumer.stop();
          await postbox.close();
        },
      };
    }
    case 'pg-boss': {
      const boss = new PgBoss({ connectionString: config.url });
      boss.on('error', (error) => console.error('pg-boss:', error));
      await boss.start();
      return {
        async start() {
          for (let i = 0; i < config.pgBossWorkers; i++) {
            await boss.work<WorkPayload>(
              config.name,
              { batchSize: config.pgBossBatchSize, pollingIntervalSeconds: 0.5, priority: false },
              async (jobs) => {
                for (const job of jobs) handle(job.data.seq);
              },
            );
          }
        },
        handled: () => handledInHandler,
        async stop() {
          await boss.stop({ graceful: true, wait: true, timeout: 10_000 });
        },
      };
    }
    case 'graphile-worker': {
      let runner: Runner | undefined;
      return {
        async start() {
          runner = await run({
            noHandleSignals: true,
            logger: new Logger(() => () => {}),
            taskList: {
              [config.name]: async (payload) => handle((payload as WorkPayload).seq),
            },
            preset: {
              worker: {
                connectionString: config.url,
                concurrentJobs: config.graphileConcurrency,
                maxPoolSize: config.graphilePoolSize,
                localQueue: { size: config.graphileLocalQueue },
                completeJobBatchDelay: 0,
                failJobBatchDelay: 0,
              },
            },
          });
        },
        handled: () => handledInHandler,
        async stop() {
          await runner?.stop();
        },
      };
    }
  }
}

async function main(): Promise<void> {
  const system = await setUp();
  let cpuAtGo = process.cpuUsage();
  let reported = -1;
  const report = () => {
    const handled = system.handled();
    if (handled !== reported) {
      reported = handled;
      send({ type: 'progress', handled });
    }
  };
  const ticker = setInterval(report, 10);
  process.on('message', (message: ToWorker) => {
    if (message.type === 'go') {
      cpuAtGo = process.cpuUsage();
      system
        .start()
        .then(report)
        .catch((error) => send({ type: 'failed', error: String(error?.stack ?? error) }));
    } else if (message.type === 'stop') {
      const { user, system: kernel } = process.cpuUsage(cpuAtGo);
      clearInterval(ticker);
      system
        .stop()
        .then(() => {
          const done: ToParent = { type: 'done', handled: system.handled(), cpuMs: (user + kernel) / 1000, seqs, startedAt };
          process.send?.(done, undefined, {}, () => process.disconnect());
        })
        .catch((error) => send({ type: 'failed', error: String(error?.stack ?? error) }));
    }
  });
  send({ type: 'ready' });
}

main().catch((error) => {
  send({ type: 'failed', error: String(error?.stack ?? error) });
  process.exitCode = 1;
});
