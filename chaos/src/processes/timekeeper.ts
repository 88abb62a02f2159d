// A process that only keeps time: it competes for the timekeeper lease and, while it holds it, moves
// delayed messages into the log and appends schedule ticks. Env: DATABASE_URL, LEASE_TTL_MS,
// POLL_INTERVAL_MS (at most a third of the lease), STANDBY_INTERVAL_MS, DEADLINE_MS (SIGTERM).
// Prints "standby" once its timekeeper runs and "active" once it holds the lease.
import { createLogger, exitOnSignals, Postbox } from 'postbox';
import { announce, announceWhen, exitWithParent, numberEnv, requiredEnv } from './process-env.js';

exitWithParent();
const postbox = await Postbox.create({
  databaseUrl: requiredEnv('DATABASE_URL'),
  migrate: 'check',
  logger: createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'chaos-timekeeper' }),
  timekeeper: 'on',
  timekeeperOptions: {
    leaseTtlMs: numberEnv('LEASE_TTL_MS', 1_000),
    pollIntervalMs: numberEnv('POLL_INTERVAL_MS', 300),
    standbyIntervalMs: numberEnv('STANDBY_INTERVAL_MS', 100),
  },
});
exitOnSignals(() => postbox.close(numberEnv('DEADLINE_MS', 5_000)));
announce('standby');
announceWhen(() => postbox.timekeeper?.state === 'active', 'active');
