// The Kafka relay (log topic to Kafka) in a process of its own.
// Env: DATABASE_URL, KAFKA_BROKERS, GROUP, TOPIC, LEASE_TTL_MS, BATCH_SIZE, DEADLINE_MS (SIGTERM).
// Prints "standby" once started and "active" once it holds the lease.
import { createLogger, exitOnSignals, Postbox } from 'postbox';
import { createKafkaRelay } from 'postbox/kafka';
import { announce, announceWhen, exitWithParent, numberEnv, requiredEnv } from './process-env.js';

exitWithParent();
const postbox = await Postbox.create({
  databaseUrl: requiredEnv('DATABASE_URL'),
  migrate: 'check',
  logger: createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'chaos-relay' }),
});
const relay = createKafkaRelay(postbox, {
  kafka: { brokers: requiredEnv('KAFKA_BROKERS').split(',') },
  // librdkafka's mock cluster refuses KafkaJS's idempotent producer.
  idempotent: false,
  group: requiredEnv('GROUP'),
  topics: [requiredEnv('TOPIC')],
  leaseTtlMs: numberEnv('LEASE_TTL_MS', 1_000),
  batchSize: numberEnv('BATCH_SIZE', 100),
  pollIntervalMs: 50,
  retryDelayMs: 50,
});
const deadlineMs = numberEnv('DEADLINE_MS', 5_000);
exitOnSignals(async () => {
  const stopped = await relay.stop(deadlineMs);
  return (await postbox.close(deadlineMs)) && stopped;
});
await relay.start();
announce('standby');
announceWhen(() => relay.state === 'active', 'active');
