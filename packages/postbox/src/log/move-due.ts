import type { Executor } from '../sql/database.js';

export interface MoveResult {
  /** Messages appended to the log. */
  moved: number;
  /** Due messages whose id the log already held: taken off the waiting list, not appended again. */
  skipped: number;
}

/**
 * Moves up to `limit` due scheduled messages into the log, through postbox.append, in the caller's
 * transaction: deleted from the waiting list and appended with their own ids, in due order and, at
 * one due time, in the order they were written. Rolled back (a crash, a lost lease), nothing moved;
 * committed, each moved once. A moved message is written by this transaction: readers see it after
 * every message committed before it, as if it had been published at the moment it moved.
 */
export async function moveDueMessages(tx: Executor, limit: number): Promise<MoveResult> {
  const { rows } = await tx.query<{ moved: number; skipped: number }>('select moved, skipped from postbox.move_due_messages($1::integer)', [
    limit,
  ]);
  return { moved: Number(rows[0]?.moved ?? 0), skipped: Number(rows[0]?.skipped ?? 0) };
}
