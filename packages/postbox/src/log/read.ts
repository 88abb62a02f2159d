import type { Database, Executor } from '../sql/database.js';
import { type LogMessage, type MessageRow, toLogMessage } from './message.js';
import type { LogPosition } from './position.js';

export interface ReadOptions {
  topics: readonly string[];
  after: LogPosition;
  limit: number;
  /** Rows of transactions visible in this snapshot are skipped (a `latest` group's start). */
  skipVisibleIn?: string | null;
}

const readSql = `
select global_position, transaction_id::text as transaction_id, topic, message_id, type, key,
       payload, headers, stream_id, stream_position, created_at
from postbox.read_after($1::text[], $2::xid8, $3::bigint, $4::integer, $5::pg_snapshot)`;

function params(options: ReadOptions): unknown[] {
  return [
    options.topics,
    String(options.after.transactionId),
    String(options.after.globalPosition),
    options.limit,
    options.skipVisibleIn ?? null,
  ];
}

/**
 * The single read path: committed messages after a position, below the visibility watermark, so
 * that a transaction which commits late is read later rather than skipped.
 */
export async function readAfter(db: Database, options: ReadOptions): Promise<LogMessage[]> {
  const { rows } = await db.queryNamed<MessageRow>('postbox_read_after', readSql, params(options));
  return rows.map(toLogMessage);
}

/** The same read, inside a transaction the caller holds. */
export async function readAfterIn(tx: Executor, options: ReadOptions): Promise<LogMessage[]> {
  const { rows } = await tx.query<MessageRow>(readSql, params(options));
  return rows.map(toLogMessage);
}
