// A router with one transactional route that parks, for the time scenario. Its handler fails the
// messages of a key while that key is down (support/failing-keys.ts) and otherwise writes one effect
// row per message in the batch's transaction (or the parked attempt's). It keeps no time itself.
// Env: DATABASE_URL, GROUP, TOPICS (comma-separated), LEASE_TTL_MS, BATCH_SIZE, PARK_DELAY_MS (the
// first delay from parking; it doubles up to four times that), DEADLINE_MS (SIGTERM).
// Prints "standby" once its route has started.
import { createLogger, exitOnSignals, Postbox, Router } from 'postbox';
import { recordEffects } from '../support/effects-table.js';
import { keyIsFailing } from '../support/failing-keys.js';
import { announce, exitWithParent, numberEnv, requiredEnv } from './process-env.js';

exitWithParent();
const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'chaos-parking' });
const postbox = await Postbox.create({
  databaseUrl: requiredEnv('DATABASE_URL'),
  migrate: 'check',
  logger,
  timekeeper: 'off',
  consumerDefaults: { pollIntervalMs: 50, retryDelayMs: 50, leaseTtlMs: numberEnv('LEASE_TTL_MS', 1_000) },
});
const parkDelayMs = numberEnv('PARK_DELAY_MS', 100);
const router = new Router(postbox).addHandler({
  name: requiredEnv('GROUP'),
  topics: requiredEnv('TOPICS').split(','),
  transactional: true,
  batchSize: numberEnv('BATCH_SIZE', 100),
  retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 20 },
  // No attempt limit: a key is down for seconds, never for the ten minutes that would dead-letter it.
  park: { initialDelayMs: parkDelayMs, maxDelayMs: parkDelayMs * 4, maxAttempts: null, maxAgeMs: 600_000 },
  handle: async (message, context) => {
    const tx = context.tx;
    if (!tx) throw new Error('the route must be transactional');
    if (message.key !== null && (await keyIsFailing(tx, message.key))) throw new Error(`downstream of ${message.key} is down`);
    await recordEffects(tx, [message.id], String(process.pid));
  },
});
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
