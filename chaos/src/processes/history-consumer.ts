// The history consumer of apps/todo-history (its route, over the PostgreSQL log) in a process of its own.
// Env: DATABASE_URL, LEASE_TTL_MS, HISTORY_BATCH_SIZE, KAFKA_TOPIC / KAFKA_GROUP_ID (the app's names),
// DEADLINE_MS (SIGTERM). Prints "standby" once the route has started.
import { createLogger, exitOnSignals, logSource, Postbox, Router } from 'postbox';
import { loadConfig } from '../../../apps/todo-history/src/config.js';
import { historyMetrics } from '../../../apps/todo-history/src/history/history-metrics.js';
import { historyRoute } from '../../../apps/todo-history/src/history/history-route.js';
import { announce, exitWithParent, numberEnv, requiredEnv } from './process-env.js';

exitWithParent();
const config = loadConfig({ ...process.env, DATABASE_URL: requiredEnv('DATABASE_URL') });
const postbox = await Postbox.create({
  databaseUrl: config.postbox.databaseUrl,
  migrate: 'check',
  logger: createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'chaos-history' }),
});
const router = new Router(postbox);
const source = logSource({ leaseTtlMs: numberEnv('LEASE_TTL_MS', 1_000), pollIntervalMs: 50 });
router.addHandler(
  historyRoute(config.history, postbox.db, { source, partitions: config.history.partitions }, historyMetrics(router.metrics.registry)),
);
const deadlineMs = numberEnv('DEADLINE_MS', 5_000);
exitOnSignals(async () => {
  const stopped = await router.stop(deadlineMs);
  return (await postbox.close(deadlineMs)) && stopped;
});
await router.start();
announce('standby');
