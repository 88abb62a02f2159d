// Concurrent writers whose transactions commit out of order, for the commit-order and rebalance scenarios.
// Env: DATABASE_URL, TOPIC, WRITERS, KEYS, MESSAGES (committed in all), MAX_PER_TRANSACTION,
// MAX_TRANSACTION_MS, ROLLBACK_RATE, MESSAGES_PER_SECOND (a steady pace over all writers; 0, the
// default, writes as fast as it can). Each key belongs to one writer, and a writer runs one transaction
// at a time, so a key's next transaction starts after the previous one ended: its messages' log order
// is their commit order, and their sequence numbers (1, 2, 3... per key, reused after a rollback) say
// what that order must be. SIGTERM ends the writing early: no new transaction starts and the open ones
// finish. At the end the writers store what committed in chaos_writer_totals and chaos_writer_stats
// (see support/ordered-writer-totals.ts), then print "done".
import { Postbox } from 'postbox';
import { delay, randomBetween } from '../support/wait.js';
import { announce, exitWithParent, numberEnv, requiredEnv } from './process-env.js';

exitWithParent();
const topic = requiredEnv('TOPIC');
const writers = numberEnv('WRITERS', 16);
const keyCount = numberEnv('KEYS', 300);
const maxPerTransaction = numberEnv('MAX_PER_TRANSACTION', 1_000);
const maxTransactionMs = numberEnv('MAX_TRANSACTION_MS', 500);
const rollbackRate = numberEnv('ROLLBACK_RATE', 0.05);
const messagesPerSecond = numberEnv('MESSAGES_PER_SECOND', 0);
let remaining = numberEnv('MESSAGES', 10_000);
let stopping = false;
process.once('SIGTERM', () => {
  stopping = true;
});
// The pace: the writer that starts the n-th message waits until n / MESSAGES_PER_SECOND seconds have passed.
const pacingStart = performance.now();
let scheduled = 0;

class PlannedRollback extends Error {}

const postbox = await Postbox.create({ databaseUrl: requiredEnv('DATABASE_URL'), migrate: 'check', pool: { max: writers + 2 } });
const committedByKey = new Map<string, number>();
const openTransactions = new Set<bigint>();
const stats = { transactions: 0, rolledBack: 0, rolledBackMessages: 0, committedMessages: 0, committedAheadOfOlder: 0 };

async function writer(index: number): Promise<void> {
  const keys: string[] = [];
  for (let k = index; k < keyCount; k += writers) keys.push(`key-${k}`);
  const next = new Map(keys.map((key) => [key, 1]));
  for (let transaction = 0; remaining > 0 && !stopping; transaction++) {
    let size = randomBetween(1, maxPerTransaction);
    if (messagesPerSecond > 0) {
      const due = pacingStart + (scheduled / messagesPerSecond) * 1_000;
      scheduled += size;
      await delay(Math.max(0, due - performance.now()));
      if (stopping) break;
    }
    // Another writer may have taken the last messages while this one waited for its turn.
    size = Math.min(remaining, size);
    if (size <= 0) break;
    remaining -= size;
    const rollback = Math.random() < rollbackRate;
    const before = new Map(next);
    const messages = Array.from({ length: size }, () => {
      const key = keys[randomBetween(0, keys.length - 1)] as string;
      const sequence = next.get(key) as number;
      next.set(key, sequence + 1);
      return { topic, type: 'ordered', key, payload: { key, sequence, writer: index, transaction, rollback } };
    });
    const split = randomBetween(0, size);
    let xid: bigint | undefined;
    try {
      await postbox.transaction(async (tx) => {
        await postbox.enqueue(tx, messages.slice(0, split));
        const { rows } = await tx.query<{ xid: string }>('select pg_current_xact_id()::text as xid');
        xid = BigInt(rows[0]?.xid as string);
        openTransactions.add(xid);
        await delay(randomBetween(0, maxTransactionMs));
        await postbox.enqueue(tx, messages.slice(split));
        if (rollback) throw new PlannedRollback();
      });
      if ([...openTransactions].some((open) => open < (xid as bigint))) stats.committedAheadOfOlder += 1;
      for (const [key, sequence] of next) committedByKey.set(key, sequence - 1);
      stats.committedMessages += size;
    } catch (error) {
      if (!(error instanceof PlannedRollback)) throw error;
      for (const [key, sequence] of before) next.set(key, sequence);
      remaining += size;
      stats.rolledBack += 1;
      stats.rolledBackMessages += size;
    } finally {
      if (xid !== undefined) openTransactions.delete(xid);
      stats.transactions += 1;
    }
  }
}

await Promise.all(Array.from({ length: writers }, (_, index) => writer(index)));
await postbox.transaction(async (tx) => {
  await tx.query('insert into chaos_writer_totals (key, committed) select unnest($1::text[]), unnest($2::int[])', [
    [...committedByKey.keys()],
    [...committedByKey.values()],
  ]);
  await tx.query('insert into chaos_writer_stats (name, value) select unnest($1::text[]), unnest($2::bigint[])', [
    Object.keys(stats),
    Object.values(stats),
  ]);
});
await postbox.close();
announce('done');
