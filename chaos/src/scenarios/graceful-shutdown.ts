import { migrate, Postbox } from 'postbox';
import { todoHistoryMigrations } from '../../../apps/todo-history/src/db/migration-set.js';
import { appDefaults } from '../../../apps/todo-history/src/defaults.js';
import type { Scenario } from '../scenario.js';
import { ProcessGroup, processEntry } from '../support/child-process.js';
import { countEffects, createEffectsTable } from '../support/effects-table.js';
import { runInterruptedGroups } from '../support/interrupted-group-run.js';
import { todoHistoryMessage } from '../support/todo-history-events.js';
import { historyRowsByMessageId, historySinkViolations } from '../support/todo-history-sink.js';

const leaseTtlMs = 1_000;
const topic = 'chaos-shipments';
const group = 'chaos-graceful';
const historyTopic = appDefaults.topic;
const historyGroup = appDefaults.groupId;
const shutdownDeadlineMs = 5_000;

const settings = {
  full: { signals: 50, poolSize: 4, messagesPerSecond: 400 },
  reduced: { signals: 3, poolSize: 4, messagesPerSecond: 300 },
};

/**
 * SIGTERM to the process holding a transactional group, at a random moment, while messages flow.
 * The process also runs the todo-history consumer. It must stop fetching, finish the batch in hand,
 * commit, hand its leases back and exit 0 within its shutdown deadline; nothing is lost and no
 * effect is written twice.
 */
export const gracefulShutdown: Scenario = {
  name: 'graceful-shutdown',
  summary: 'SIGTERM the holder of a transactional group while messages flow: exit 0 within the deadline, 0 lost, 0 duplicated',
  async run(context) {
    const { signals, poolSize, messagesPerSecond } = settings[context.mode];
    const postbox = await Postbox.create({ databaseUrl: context.databaseUrl, migrate: 'auto' });
    const processes = new ProcessGroup();
    try {
      await migrate(postbox.db, { set: todoHistoryMigrations });
      await createEffectsTable(postbox.db);
      return await runInterruptedGroups({
        context,
        postbox,
        flows: [
          {
            label: 'effect rows',
            topic,
            group,
            messagesPerSecond,
            messagesPerTransaction: 10,
            message: (sequence) => ({ topic, type: 'shipment.sent', key: `warehouse-${sequence % 30}`, payload: { sequence } }),
            observe: () => countEffects(postbox.db),
            duplicatesAllowed: () => 0,
          },
          {
            label: 'history rows',
            topic: historyTopic,
            group: historyGroup,
            messagesPerSecond: messagesPerSecond / 2,
            messagesPerTransaction: 10,
            message: (sequence) => todoHistoryMessage(historyTopic, sequence),
            observe: () => historyRowsByMessageId(postbox.db),
            duplicatesAllowed: () => 0,
            checkSink: () => historySinkViolations(postbox.db),
          },
        ],
        startProcess: (index) =>
          processes.start(`router-${index}`, processEntry('graceful-router.ts'), {
            DATABASE_URL: context.databaseUrl,
            GROUP: group,
            TOPIC: topic,
            LEASE_TTL_MS: String(leaseTtlMs),
            BATCH_SIZE: '100',
            WORK_MS: '20',
            DEADLINE_MS: String(shutdownDeadlineMs),
            KAFKA_TOPIC: historyTopic,
            KAFKA_GROUP_ID: historyGroup,
            KAFKA_BROKERS: undefined,
          }),
        leaseTtlMs,
        signal: 'SIGTERM',
        interruptions: signals,
        poolSize,
        runMs: [0, 800],
        shutdownDeadlineMs,
        catchUpTimeoutMs: 60_000,
      });
    } finally {
      await processes.killAll();
      await postbox.close(2_000);
    }
  },
};
