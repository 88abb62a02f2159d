// A router with two transactional routes, shut down by SIGTERM: one whose handler writes an effect
// row per message (with a little work per message, so a signal finds batches in flight), and the
// todo-history consumer. Env: DATABASE_URL, GROUP, TOPIC, LEASE_TTL_MS, BATCH_SIZE, HANDLER_DELAY_MS,
// DEADLINE_MS (the shutdown deadline), KAFKA_TOPIC / KAFKA_GROUP_ID (the history route's, the app's names).
// Prints "standby" once both routes have started.
import { createLogger, exitOnSignals, logSource, Postbox, Router } from 'postbox';
import { loadConfig } from '../../../apps/todo-history/src/config.js';
import { historyMetrics } from '../../../apps/todo-history/src/history/history-metrics.js';
import { historyRoute } from '../../../apps/todo-history/src/history/history-route.js';
import { announce, numberEnv, requiredEnv } from './process-env.js';

const config = loadConfig({ ...process.env, DATABASE_URL: requiredEnv('DATABASE_URL') });
const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'chaos-graceful' });
const postbox = await Postbox.create({ databaseUrl: config.postbox.databaseUrl, migrate: 'check', logger });
const handlerDelayMs = numberEnv('HANDLER_DELAY_MS', 2);
const source = () => logSource({ leaseTtlMs: numberEnv('LEASE_TTL_MS', 1_000), pollIntervalMs: 50 });
const router = new Router(postbox);
router
  .addHandler({
    name: requiredEnv('GROUP'),
    topics: [requiredEnv('TOPIC')],
    source: source(),
    transactional: true,
    batchSize: numberEnv('BATCH_SIZE', 50),
    handle: async (message, context) => {
      await new Promise((resolve) => setTimeout(resolve, handlerDelayMs));
      await context.tx?.query('insert into chaos_effects (message_id, owner) values ($1, $2)', [message.id, String(process.pid)]);
    },
  })
  .addHandler(historyRoute(config.history, postbox.db, source(), historyMetrics(router.metrics.registry)));
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
