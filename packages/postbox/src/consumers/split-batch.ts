import type { Logger } from '../observability/logger.js';
import type { Executor } from '../sql/database.js';
import { withSavepoint } from '../sql/savepoint.js';

export interface SplitBatchOptions<T> {
  /** The batch's transaction, if any: the whole batch then runs in a savepoint of it. */
  tx: Executor | undefined;
  signal: AbortSignal;
  logger: Logger;
  whole(items: T[]): Promise<void>;
  /** Runs after a failed whole batch, on every item; it decides what a failure of one item means. */
  oneByOne(items: T[]): Promise<void>;
}

/**
 * The fast path of batch handlers, and its fallback: the whole batch at once, and when that throws,
 * its writes rolled back and each item handled on its own, so that only a bad item is retried or
 * dead-lettered. A stop or a lost lease is not a failure of the batch: that error is thrown on.
 * Returns whether the whole batch went through at once.
 */
export async function wholeBatchFirst<T>(items: T[], options: SplitBatchOptions<T>): Promise<boolean> {
  if (items.length === 0) return true;
  try {
    if (options.tx) await withSavepoint(options.tx, 'postbox_batch', () => options.whole(items));
    else await options.whole(items);
    return true;
  } catch (error) {
    if (options.signal.aborted) throw error;
    options.logger.warn({ err: error, size: items.length }, 'batch failed; handling its messages one by one');
  }
  await options.oneByOne(items);
  return false;
}
