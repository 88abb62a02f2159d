import { ValidationError } from '../errors/postbox-error.js';
import type { MessageRow } from '../log/message.js';
import { beginningOfLog, type LogPosition } from '../log/position.js';
import { readAfter, readAfterIn } from '../log/read.js';
import type { Database, Executor } from '../sql/database.js';
import type { EventLike, RecordedEvent } from './event.js';
import { isDatabase } from './executor.js';
import { recordedEventOf, toRecordedEvent } from './recorded-event.js';
import { type Upcasters, upcastAll } from './upcasters.js';

export interface ReadAllOptions {
  /** Read strictly after this log position; the beginning by default. */
  after?: LogPosition;
  /** Rows scanned per call (plain messages of a category's topic count too). */
  limit?: number;
  /** Only these categories (through postbox.read_after); every stream when omitted. */
  categories?: readonly string[];
  upcasters?: Upcasters;
}

export interface ReadAllResult<E extends EventLike = EventLike> {
  events: RecordedEvent<E>[];
  /** Where the next call goes on from: the last row scanned, or `after` when there was none. */
  position: LogPosition;
}

const readAllSql = `
select global_position, transaction_id::text as transaction_id, topic, message_id, type, key,
       payload, headers, stream_id, stream_position, created_at
from postbox.read_all_after($1::xid8, $2::bigint, $3::integer)`;

/**
 * Events of every stream (or of some categories) after a log position, in (transaction_id,
 * global_position) order and only below the visibility watermark: like a consumer group, a reader
 * that goes on from the returned position never skips a transaction that commits late.
 */
export async function readAll<E extends EventLike = EventLike>(
  db: Database | Executor,
  options: ReadAllOptions = {},
): Promise<ReadAllResult<E>> {
  const after = options.after ?? beginningOfLog;
  const limit = options.limit ?? 1_000;
  if (!Number.isSafeInteger(limit) || limit <= 0) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `limit must be a positive integer (got ${String(limit)}).`, { option: 'limit' });
  }
  if (options.categories) {
    const read = { topics: options.categories, after, limit };
    const messages = isDatabase(db) ? await readAfter(db, read) : await readAfterIn(db, read);
    const last = messages.at(-1);
    const events = messages.filter((message) => message.streamId !== null).map(recordedEventOf);
    return {
      events: upcastAll(events, options.upcasters) as RecordedEvent<E>[],
      position: last ? { transactionId: last.transactionId, globalPosition: last.globalPosition } : after,
    };
  }
  const { rows } = await db.query<MessageRow>(readAllSql, [String(after.transactionId), String(after.globalPosition), limit]);
  const events = rows.map((row) => toRecordedEvent(row));
  const last = events.at(-1);
  return {
    events: upcastAll(events, options.upcasters) as RecordedEvent<E>[],
    position: last ? { transactionId: last.transactionId, globalPosition: last.globalPosition } : after,
  };
}
