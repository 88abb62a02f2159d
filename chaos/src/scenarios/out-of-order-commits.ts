import { Postbox } from 'postbox';
import type { Scenario, ScenarioOutcome } from '../scenario.js';
import { ProcessGroup, processEntry } from '../support/child-process.js';
import { KeySequenceCheck } from '../support/key-sequence-check.js';
import { createWriterTables, writerTotals } from '../support/ordered-writer-totals.js';
import { waitFor } from '../support/wait.js';
import { waitForCount } from '../support/wait-for-count.js';

const topic = 'ordered';
const group = 'ordered-reader';

const settings = {
  full: { messages: 1_000_000, maxPerTransaction: 1_500, writersTimeoutMs: 300_000 },
  reduced: { messages: 50_000, maxPerTransaction: 500, writersTimeoutMs: 90_000 },
} as const;
const writers = 16;
const keys = 300;
const maxTransactionMs = 500;
const rollbackRate = 0.05;

interface OrderedPayload {
  key: string;
  sequence: number;
  rollback: boolean;
}

/** What the log itself holds: messages of committed transactions, and any of a rolled-back one. */
async function logCounts(postbox: Postbox): Promise<{ committed: number; rolledBack: number }> {
  const { rows } = await postbox.db.query<{ committed: number; rolled_back: number }>(
    `select count(*) filter (where payload->>'rollback' = 'false')::int as committed,
            count(*) filter (where payload->>'rollback' = 'true')::int as rolled_back
     from postbox.messages where topic = $1`,
    [topic],
  );
  return { committed: Number(rows[0]?.committed ?? 0), rolledBack: Number(rows[0]?.rolled_back ?? 0) };
}

export const outOfOrderCommits: Scenario = {
  name: 'out-of-order-commits',
  summary: `${writers} writers, transactions of 0-${maxTransactionMs} ms committing out of order, ${rollbackRate * 100}% rolled back, one group reading meanwhile: nothing skipped, nothing rolled back delivered, each key in commit order`,
  async run({ mode, databaseUrl, log }): Promise<ScenarioOutcome> {
    const setting = settings[mode];
    const processes = new ProcessGroup();
    const postbox = await Postbox.create({ databaseUrl, migrate: 'auto' });
    try {
      await createWriterTables(postbox.db);
      const check = new KeySequenceCheck();
      let rolledBackDelivered = 0;
      const reader = postbox.consumer({
        group,
        topics: [topic],
        handleBatch: async (messages) => {
          for (const message of messages) {
            const payload = message.payload as OrderedPayload;
            if (payload.rollback) rolledBackDelivered += 1;
            else check.see({ key: payload.key, sequence: payload.sequence, identity: Number(message.globalPosition) });
          }
        },
      });
      await reader.start();

      const started = performance.now();
      const writing = processes.start('ordered-writers', processEntry('ordered-writers.ts'), {
        DATABASE_URL: databaseUrl,
        TOPIC: topic,
        WRITERS: String(writers),
        KEYS: String(keys),
        MESSAGES: String(setting.messages),
        MAX_PER_TRANSACTION: String(setting.maxPerTransaction),
        MAX_TRANSACTION_MS: String(maxTransactionMs),
        ROLLBACK_RATE: String(rollbackRate),
      });
      const progress = setInterval(() => log(`delivered ${check.distinct.toLocaleString('en-US')} so far`), 10_000);
      try {
        await writing.waitForLine('done', setting.writersTimeoutMs);
      } finally {
        clearInterval(progress);
      }
      const writtenAt = performance.now();
      const { committed, stats } = await writerTotals(postbox.db);
      const sent = [...committed.values()].reduce((sum, count) => sum + count, 0);
      log(`writers committed ${sent.toLocaleString('en-US')} messages in ${((writtenAt - started) / 1000).toFixed(1)} s`);

      const violations: string[] = [];
      const delivered = await waitForCount(() => check.distinct, sent, { stallMs: 10_000, timeoutMs: 120_000 });
      if (!delivered.reached) {
        violations.push(
          `the group stopped at ${delivered.count} of ${sent} messages (waited ${(delivered.elapsedMs / 1000).toFixed(1)} s)`,
        );
      }
      // Settle, so that anything delivered beyond what committed is seen too.
      await waitFor(async () => (await postbox.groupStatus(group))[0]?.lagMessages === 0, 10_000, 'zero lag').catch(() => undefined);
      await reader.stop();

      const missing = check.missing(committed);
      const inLog = await logCounts(postbox);
      if (missing.lost > 0) violations.push(`${missing.lost} committed messages were never delivered (${missing.examples.join('; ')})`);
      if (missing.unexpected > 0) violations.push(`${missing.unexpected} delivered messages were never committed`);
      if (rolledBackDelivered > 0) violations.push(`${rolledBackDelivered} messages of rolled-back transactions were delivered`);
      if (check.outOfOrder > 0) {
        violations.push(`${check.outOfOrder} deliveries out of their key's commit order (${check.orderExamples.join('; ')})`);
      }
      if (inLog.rolledBack > 0) violations.push(`${inLog.rolledBack} messages of rolled-back transactions are in the log`);
      if (inLog.committed !== sent) violations.push(`the log holds ${inLog.committed} messages, the writers committed ${sent}`);

      const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
      return {
        runs: stats.committedAheadOfOlder ?? 0,
        sent,
        received: check.deliveries + rolledBackDelivered,
        lost: missing.lost,
        duplicated: check.duplicates,
        maxRecoveryMs: 0,
        violations,
        notes: [
          `${stats.transactions} transactions (${stats.rolledBack} rolled back with ${stats.rolledBackMessages} messages), ${committed.size} keys`,
          `runs = transactions that committed while an older one was still open`,
          `writing took ${seconds(writtenAt - started)} (${Math.round(sent / ((writtenAt - started) / 1000)).toLocaleString('en-US')} msg/s committed); the group had everything ${seconds(delivered.elapsedMs)} after the last commit`,
        ],
      };
    } finally {
      await processes.killAll();
      await postbox.close();
    }
  },
};
