import { Postbox } from 'postbox';
import type { Scenario } from '../scenario.js';
import { ProcessGroup, processEntry } from '../support/child-process.js';
import { countEffects, createEffectsTable } from '../support/effects-table.js';
import { runInterruptedGroups } from '../support/interrupted-group-run.js';

const leaseTtlMs = 1_000;
const topic = 'chaos-payments';
const group = 'chaos-transactional';

const settings = {
  full: { kills: 15, poolSize: 3, messagesPerSecond: 500 },
  reduced: { kills: 2, poolSize: 3, messagesPerSecond: 300 },
};

/**
 * kill -9 of the process holding a transactional group, whose handler writes one effect row per
 * message in the batch's transaction. Effects commit with the checkpoint, so after any number of
 * kills every message has exactly one effect row.
 */
export const crashTransactionalConsumer: Scenario = {
  name: 'crash-transactional-consumer',
  summary: 'kill -9 the holder of a transactional group while messages flow: every message has exactly one effect row',
  async run(context) {
    const { kills, poolSize, messagesPerSecond } = settings[context.mode];
    const postbox = await Postbox.create({ databaseUrl: context.databaseUrl, migrate: 'auto' });
    const processes = new ProcessGroup();
    try {
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
            messagesPerTransaction: 25,
            message: (sequence) => ({ topic, type: 'payment.captured', key: `account-${sequence % 40}`, payload: { sequence } }),
            observe: () => countEffects(postbox.db),
            duplicatesAllowed: () => 0,
          },
        ],
        startProcess: (index) =>
          processes.start(`consumer-${index}`, processEntry('transactional-consumer.ts'), {
            DATABASE_URL: context.databaseUrl,
            GROUP: group,
            TOPIC: topic,
            LEASE_TTL_MS: String(leaseTtlMs),
            BATCH_SIZE: '100',
            WORK_MS: '20',
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
