import { defaults } from '../config/defaults.js';
import type { Logger } from '../observability/logger.js';
import type { Database, Executor } from '../sql/database.js';
import { claimRetries, type DeadLetter, hasRetries, markRetried } from './dead-letter-store.js';

/** What handling a retried dead letter came to: handled at last, or dead-lettered again. */
export type RedeliveryOutcome = 'retried' | 'dead_lettered';

/**
 * Handles the dead letters of a group that someone asked to retry, in one transaction: each is given
 * to `handle` on that transaction, and marked retried unless `handle` dead-lettered it again. Only
 * this group sees its letters, and two processes never take the same one. An idle group costs one
 * indexed read, not a transaction. Returns how many letters were handled.
 */
export async function redeliverRetries(
  db: Database,
  group: string,
  handle: (tx: Executor, letter: DeadLetter) => Promise<RedeliveryOutcome>,
): Promise<number> {
  if (!(await hasRetries(db, group))) return 0;
  return db.transaction(async (tx) => {
    const letters = await claimRetries(tx, group, defaults.redeliveryBatchSize);
    for (const letter of letters) {
      if ((await handle(tx, letter)) === 'retried') await markRetried(tx, letter.id);
    }
    return letters.length;
  });
}

/**
 * Runs `redeliver` whenever dead letters are asked to be retried (a NOTIFY from retryDeadLetters)
 * and every intervalMs in case a NOTIFY was missed, one run at a time, until the returned function
 * is called. A failed run is logged and tried again on the next occasion.
 */
export async function watchRetryRequests(
  db: Database,
  intervalMs: number,
  logger: Logger,
  redeliver: () => Promise<unknown>,
): Promise<() => Promise<void>> {
  let running: Promise<unknown> | undefined;
  let again = false;
  const run = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = redeliver()
      .catch((error) => logger.error({ err: error }, 'redelivery of dead letters failed; it will be tried again'))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          run();
        }
      });
  };
  const unlisten = await db.listen(defaults.deadLetterChannel, run, run);
  const timer = setInterval(run, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await unlisten().catch(() => undefined);
    again = false;
    await running;
  };
}
