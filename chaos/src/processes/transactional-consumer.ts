// A transactional consumer group whose batch handler writes one effect row per message in the
// batch's transaction, so effects commit with the checkpoint.
// Env: DATABASE_URL, GROUP, TOPIC, LEASE_TTL_MS, BATCH_SIZE, WORK_MS (per batch, before the write),
// DEADLINE_MS (SIGTERM). Prints "standby" once started and "active" once it holds the lease.
import { createLogger, exitOnSignals, Postbox } from 'postbox';
import { recordEffects } from '../support/effects-table.js';
import { announce, announceWhen, exitWithParent, numberEnv, requiredEnv } from './process-env.js';

exitWithParent();
const workMs = numberEnv('WORK_MS', 0);
const postbox = await Postbox.create({
  databaseUrl: requiredEnv('DATABASE_URL'),
  migrate: 'check',
  logger: createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'chaos-consumer' }),
});
const consumer = postbox.consumer({
  group: requiredEnv('GROUP'),
  topics: [requiredEnv('TOPIC')],
  transactional: true,
  leaseTtlMs: numberEnv('LEASE_TTL_MS', 1_000),
  pollIntervalMs: 50,
  retryDelayMs: 50,
  batchSize: numberEnv('BATCH_SIZE', 100),
  handleBatch: async (messages, context) => {
    if (workMs > 0) await new Promise((resolve) => setTimeout(resolve, workMs));
    await recordEffects(
      context.tx,
      messages.map((message) => message.id),
      consumer.owner,
    );
  },
});
exitOnSignals(() => postbox.close(numberEnv('DEADLINE_MS', 5_000)));
await consumer.start();
announce('standby');
announceWhen(() => consumer.state === 'active', 'active');
