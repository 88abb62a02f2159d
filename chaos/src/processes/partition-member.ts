// A member of a partitioned transactional group, for the rebalance scenario. Its batch handler
// works a little, then writes the batch's record (partition, member, span on the server clock) and
// one effect row per message (id, key, sequence, place in the batch) in the batch's transaction.
// Env: DATABASE_URL, GROUP, TOPIC, PARTITIONS, MEMBER (its name in the group), LEASE_TTL_MS,
// BATCH_SIZE, WORK_MS (each batch works a random 0.5 to 1.5 times this), DEADLINE_MS (SIGTERM).
// SIGUSR2 asks for a kill -9 in the middle of a batch: the next batch to reach one of its two kill
// points (after its first statement, or after its effects are written, before the commit; drawn
// at random) sends SIGKILL to this process. Prints "standby" once its consumer has started.
import { createLogger, exitOnSignals, Postbox } from 'postbox';
import { batchClock, recordBatchEffects } from '../support/effects-table.js';
import { announce, exitWithParent, numberEnv, requiredEnv } from './process-env.js';

exitWithParent();
const member = requiredEnv('MEMBER');
const workMs = numberEnv('WORK_MS', 20);
let killAt: 'started' | 'written' | undefined;
process.on('SIGUSR2', () => {
  killAt = Math.random() < 0.5 ? 'started' : 'written';
});
const killHereIf = (point: 'started' | 'written') => {
  if (killAt === point) process.kill(process.pid, 'SIGKILL');
};

const postbox = await Postbox.create({
  databaseUrl: requiredEnv('DATABASE_URL'),
  migrate: 'check',
  logger: createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: member }),
});
const consumer = postbox.consumer({
  group: requiredEnv('GROUP'),
  topics: [requiredEnv('TOPIC')],
  partitions: numberEnv('PARTITIONS', 8),
  owner: member,
  transactional: true,
  leaseTtlMs: numberEnv('LEASE_TTL_MS', 1_000),
  pollIntervalMs: 50,
  retryDelayMs: 50,
  batchSize: numberEnv('BATCH_SIZE', 100),
  handleBatch: async (messages, context) => {
    const tx = context.tx;
    if (!tx) throw new Error('the group must be transactional');
    const handlerStartedAt = await batchClock(tx);
    killHereIf('started');
    await new Promise((resolve) => setTimeout(resolve, workMs * (0.5 + Math.random())));
    await recordBatchEffects(tx, {
      partition: context.partition,
      member,
      handlerStartedAt,
      messages: messages.map((message) => ({
        id: message.id,
        key: message.key as string,
        sequence: (message.payload as { sequence: number }).sequence,
      })),
    });
    killHereIf('written');
  },
});
exitOnSignals(() => postbox.close(numberEnv('DEADLINE_MS', 5_000)));
await consumer.start();
announce('standby');
