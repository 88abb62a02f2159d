import { defaults } from '../config/defaults.js';
import { ValidationError } from '../errors/postbox-error.js';
import type { Executor } from '../sql/database.js';

/** What a handled command returned, kept by command id. */
export interface StoredCommandResult {
  streamId: string;
  previousVersion: number;
  nextExpectedVersion: number;
  eventIds: string[];
  globalPositions: string[];
  result?: unknown;
}

export async function findCommandResult(db: Executor, commandId: string): Promise<StoredCommandResult | undefined> {
  const { rows } = await db.query<{ result: StoredCommandResult }>(
    'select result from postbox.command_results where command_id = $1 and expires_at > now()',
    [commandId],
  );
  return rows[0]?.result;
}

/**
 * Records a command's result in the append's transaction. False when a live result is there already,
 * that is when the same command was handled by another transaction first.
 */
export async function saveCommandResult(
  tx: Executor,
  entry: { commandId: string; streamId: string; commandType: string; result: StoredCommandResult; ttlMs: number },
): Promise<boolean> {
  const { rowCount } = await tx.query(
    `insert into postbox.command_results as c (command_id, stream_id, command_type, result, expires_at)
     values ($1, $2, $3, $4::jsonb, now() + $5 * interval '1 millisecond')
     on conflict (command_id) do update
       set stream_id = excluded.stream_id, command_type = excluded.command_type, result = excluded.result,
           created_at = now(), expires_at = excluded.expires_at
       where c.expires_at <= now()`,
    [entry.commandId, entry.streamId, entry.commandType, JSON.stringify(entry.result), entry.ttlMs],
  );
  return rowCount > 0;
}

export interface PruneCommandResultsOptions {
  /** Rows deleted per statement, so pruning never holds many locks for long. */
  batchSize?: number;
}

/** The batch size of a prune, checked. */
export function pruneBatchSize(options: PruneCommandResultsOptions): number {
  const batchSize = options.batchSize ?? defaults.eventStore.commandResultPruneBatchSize;
  if (!Number.isSafeInteger(batchSize) || batchSize <= 0) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `batchSize must be a positive integer (got ${String(batchSize)}).`, {
      option: 'batchSize',
    });
  }
  return batchSize;
}

/**
 * Deletes results past their time to live (they are ignored once expired anyway), in batches,
 * skipping rows another transaction holds; returns how many.
 */
export async function pruneCommandResults(db: Executor, options: PruneCommandResultsOptions = {}): Promise<number> {
  const batchSize = pruneBatchSize(options);
  let deleted = 0;
  for (;;) {
    const { rowCount } = await db.query(
      `delete from postbox.command_results
       where command_id in (
         select command_id from postbox.command_results
         where expires_at <= now()
         order by expires_at
         limit $1
         for update skip locked)`,
      [batchSize],
    );
    deleted += rowCount;
    if (rowCount < batchSize) return deleted;
  }
}
