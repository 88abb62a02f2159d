import { defaults } from '../config/defaults.js';
import type { Database, Executor } from '../sql/database.js';

/** How far the server's transaction ids were moved on. */
export interface TransactionIdAdvance {
  usedUp: bigint;
  /** The next id the server will assign now. */
  nextTransactionId: bigint;
  elapsedMs: number;
}

/**
 * SQL for the next transaction id the server will assign, without taking one: the snapshot's xmax,
 * or past the current transaction's own id when it has one (its own rows are visible to it, while
 * the xmax of its snapshot may not be above its id).
 */
export const nextTransactionIdSql =
  'greatest(pg_snapshot_xmax(pg_current_snapshot()), (pg_current_xact_id_if_assigned()::text::numeric + 1)::text::xid8)';

/** The next transaction id the server will assign; it takes none itself. */
export async function nextTransactionId(db: Executor): Promise<bigint> {
  const { rows } = await db.query<{ next: string }>(`select ${nextTransactionIdSql}::text as next`);
  return BigInt((rows[0] as { next: string }).next);
}

/**
 * Uses up transaction ids until the server's next id is above `highest`: transactions that take an
 * id and commit, a round of them per statement. Such a commit writes no data; PostgreSQL does not
 * wait for it to reach the disk, and the recovery's own commit later flushes them all.
 */
export async function advanceTransactionIdsPast(
  db: Database,
  highest: bigint,
  onProgress?: (advance: TransactionIdAdvance & { remaining: bigint }) => void,
): Promise<TransactionIdAdvance> {
  const started = performance.now();
  const first = await nextTransactionId(db);
  let next = first;
  while (next <= highest) {
    const remaining = highest - next + 1n;
    const round =
      remaining < BigInt(defaults.recovery.transactionIdsPerRound) ? remaining : BigInt(defaults.recovery.transactionIdsPerRound);
    await db.exec(`do $$ begin for i in 1..${round} loop perform pg_current_xact_id(); commit; end loop; end $$`);
    next = await nextTransactionId(db);
    onProgress?.({
      usedUp: next - first,
      nextTransactionId: next,
      elapsedMs: performance.now() - started,
      remaining: next > highest ? 0n : highest - next + 1n,
    });
  }
  return { usedUp: next - first, nextTransactionId: next, elapsedMs: performance.now() - started };
}
