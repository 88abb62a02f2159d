// A router with two transactional routes, shut down by SIGTERM: one whose batch handler works a
// little (WORK_MS, so a signal finds batches in flight) and writes an effect row per message, and the
// todo-history consumer. Env: DATABASE_URL, GROUP, TOPIC, LEASE_TTL_MS, BATCH_SIZE, WORK_MS,
// DEADLINE_MS (the shutdown deadline), KAFKA_TOPIC / KAFKA_GROUP_ID (the history route's, the app's names).
// Prints "standby" once both routes have started.
import { createLogger, exitOnSignals, logSource, Postbox, Router } from 'postbox';
import { loadConfig } from '../../../apps/todo-history/src/config.js';
import { historyMetrics } from '../../../apps/todo-history/src/history/history-metrics.js';
import { historyRoute } from '../../../apps/todo-history/src/history/history-route.js';
import { recordEffects } from '../support/effects-table.js';
import { announce, exitWithParent, numberEnv, requiredEnv } from './process-env.js';

exitWithParent();
const config = loadConfig({ ...process.env, DATABASE_URL: requiredEnv('DATABASE_URL') });
const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'chaos-graceful' });
const postbox = await Postbox.create({ databaseUrl: config.postbox.databaseUrl, migrate: 'check', logger });
const workMs = numberEnv('WORK_MS', 20);
const source = () => logSource({ leaseTtlMs: numberEnv('LEASE_TTL_MS', 1_000), pollIntervalMs: 50 });
const router = new Router(postbox);
router
  .addHandler({
    name: requiredEnv('GROUP'),
    topics: [requiredEnv('TOPIC')],
    source: source(),
    transactional: true,
    batchSize: numberEnv('BATCH_SIZE', 100),
    handleBatch: async (messages, context) => {
      await new Promise((resolve) => setTimeout(resolve, workMs));
      await recordEffects(
        context.tx,
        messages.map((message) => message.id),
        String(process.pid),
      );
    },
  })
  .addHandler(
    historyRoute(
      config.history,
      postbox.db,
      { source: source(), partitions: config.history.partitions },
      historyMetrics(router.metrics.registry),
    ),
  );
const deadlineMs = numberEnv('DEADLINE_MS', 5_000);
exitOnSignals(
  async () => {
    const stopped = await router.stop(deadlineMs);
    return (await postbox.close(deadlineMs)) && stopped;
  },
  { logger },
);
await router.start();
announce('standby');
