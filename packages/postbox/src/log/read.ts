import type { Executor } from '../sql/database.js';
import { executorFor, type Target } from '../sql/target.js';
import { type LogMessage, type MessageRow, messageColumns, toLogMessage } from './message.js';
import type { LogPosition } from './position.js';

export interface ReadOptions {
  /** The rows of these topics; without topics, the events of every stream. */
  topics?: readonly string[] | null;
  after: LogPosition;
  limit: number;
  /** Rows of transactions visible in this snapshot are skipped (a `latest` group's start). */
  skipVisibleIn?: string | null;
  /** Only the rows of one partition of the topics (see partitionOf); all of them by default. */
  partition?: { index: number; count: number };
}

const readSql = `select ${messageColumns}
from postbox.read_after($1::text[], $2::xid8, $3::bigint, $4::integer, $5::pg_snapshot, $6::integer, $7::integer)`;

/**
 * The read of readers: committed messages after a position, in (transaction_id, global_position)
 * order and below the visibility watermark, so that a transaction which commits late is read later
 * rather than skipped; of one partition of the topics, when given. On a Database the statement is prepared once per connection; on a caller's
 * transaction it runs as it is.
 */
export async function readAfter(target: Target, options: ReadOptions): Promise<LogMessage[]> {
  const { rows } = await executorFor(target).query<MessageRow>(readSql, [
    options.topics ?? null,
    String(options.after.transactionId),
    String(options.after.globalPosition),
    options.limit,
    options.skipVisibleIn ?? null,
    options.partition?.index ?? 0,
    options.partition?.count ?? 1,
  ]);
  return rows.map(toLogMessage);
}

/** A point in the past: a stream read stops before the first event after it. */
export type AsOf = { timestamp: Date } | { globalPosition: bigint };

export interface StreamRange {
  streamId: string;
  /** The first and last positions read, both included, in the direction of the read. */
  from: number;
  to: number;
  backward: boolean;
  limit: number;
  asOf?: AsOf;
}

const notAfter = {
  timestamp: 'x.created_at > $5::timestamptz',
  globalPosition: 'x.global_position > $5::bigint',
} as const;

function streamReadSql(backward: boolean, asOf: keyof typeof notAfter | undefined): string {
  const [low, high, order] = backward ? ['$3', '$2', 'desc'] : ['$2', '$3', ''];
  const bound = asOf
    ? `and stream_position < coalesce((select min(x.stream_position) from postbox.messages x
         where x.stream_id = $1 and ${notAfter[asOf]}), 9223372036854775807)`
    : '';
  return `select ${messageColumns} from postbox.messages
  where stream_id = $1 and stream_position >= ${low} and stream_position <= ${high} ${bound}
  order by stream_position ${order} limit $4`;
}

const streamReads = new Map<string, string>();

/**
 * The read of one stream: its events between two positions, in stream order (or backward). A
 * stream's positions have no gaps once committed, so no watermark is needed. With asOf, the read
 * stops before the first event written after that time or log position.
 */
export async function readStreamRange(db: Executor, range: StreamRange): Promise<LogMessage[]> {
  const asOf = range.asOf && ('timestamp' in range.asOf ? 'timestamp' : 'globalPosition');
  const key = `${range.backward}:${asOf}`;
  let sql = streamReads.get(key);
  if (!sql) {
    sql = streamReadSql(range.backward, asOf);
    streamReads.set(key, sql);
  }
  const params: unknown[] = [range.streamId, range.from, range.to, range.limit];
  if (range.asOf) params.push('timestamp' in range.asOf ? range.asOf.timestamp : String(range.asOf.globalPosition));
  const { rows } = await db.query<MessageRow>(sql, params);
  return rows.map(toLogMessage);
}
