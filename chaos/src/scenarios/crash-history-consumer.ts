import { migrate, Postbox } from 'postbox';
import { todoHistoryMigrations } from '../../../apps/todo-history/src/db/migration-set.js';
import { appDefaults } from '../../../apps/todo-history/src/defaults.js';
import type { Scenario } from '../scenario.js';
import { ProcessGroup, processEntry } from '../support/child-process.js';
import { runInterruptedGroups } from '../support/interrupted-group-run.js';
import { todoHistoryMessage } from '../support/todo-history-events.js';
import { historyRowsByMessageId, historySinkViolations } from '../support/todo-history-sink.js';

const leaseTtlMs = 1_000;
const topic = appDefaults.topic;
const group = appDefaults.groupId;

const settings = {
  full: { kills: 12, poolSize: 3, messagesPerSecond: 500 },
  reduced: { kills: 1, poolSize: 2, messagesPerSecond: 300 },
};

/**
 * kill -9 of the process running the todo-history consumer (its route over the PostgreSQL log,
 * into todo_event_logs). Its rows commit with its checkpoint, so every event has exactly one row.
 */
export const crashHistoryConsumer: Scenario = {
  name: 'crash-history-consumer',
  summary: 'kill -9 the todo-history consumer while events flow: every event has exactly one todo_event_logs row',
  async run(context) {
    const { kills, poolSize, messagesPerSecond } = settings[context.mode];
    const postbox = await Postbox.create({ databaseUrl: context.databaseUrl, migrate: 'auto' });
    const processes = new ProcessGroup();
    try {
      await migrate(postbox.db, { set: todoHistoryMigrations });
      return await runInterruptedGroups({
        context,
        postbox,
        flows: [
          {
            label: 'history rows',
            topic,
            group,
            messagesPerSecond,
            messagesPerTransaction: 25,
            message: (sequence) => todoHistoryMessage(topic, sequence),
            observe: () => historyRowsByMessageId(postbox.db),
            duplicatesAllowed: () => 0,
            checkSink: () => historySinkViolations(postbox.db),
          },
        ],
        startProcess: (index) =>
          processes.start(`history-${index}`, processEntry('history-consumer.ts'), {
            DATABASE_URL: context.databaseUrl,
            LEASE_TTL_MS: String(leaseTtlMs),
            KAFKA_TOPIC: topic,
            KAFKA_GROUP_ID: group,
            KAFKA_BROKERS: undefined,
          }),
        leaseTtlMs,
        signal: 'SIGKILL',
        interruptions: kills,
        poolSize,
        runMs: [0, 1_500],
        catchUpTimeoutMs: 60_000,
      });
    } finally {
      await processes.killAll();
      await postbox.close(2_000);
    }
  },
};
