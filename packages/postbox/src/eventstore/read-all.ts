import { ValidationError } from '../errors/postbox-error.js';
import { beginningOfLog, type LogPosition } from '../log/position.js';
import { readAfter } from '../log/read.js';
import type { Target } from '../sql/target.js';
import type { EventLike, RecordedEvent } from './event.js';
import { recordedEventOf } from './recorded-event.js';
import { type Upcasters, upcastAll } from './upcasters.js';

export interface ReadAllOptions {
  /** Read strictly after this log position; the beginning by default. */
  after?: LogPosition;
  /** Rows scanned per call (plain messages of a category's topic count too). */
  limit?: number;
  /** Only these categories; every stream when omitted. */
  categories?: readonly string[];
  upcasters?: Upcasters;
}

export interface ReadAllResult<E extends EventLike = EventLike> {
  events: RecordedEvent<E>[];
  /** Where the next call goes on from: the last row scanned, or `after` when there was none. */
  position: LogPosition;
}

/**
 * Events of every stream (or of some categories) after a log position, in (transaction_id,
 * global_position) order and only below the visibility watermark: like a consumer group, a reader
 * that goes on from the returned position never skips a transaction that commits late.
 */
export async function readAll<E extends EventLike = EventLike>(target: Target, options: ReadAllOptions = {}): Promise<ReadAllResult<E>> {
  const after = options.after ?? beginningOfLog;
  const limit = options.limit ?? 1_000;
  if (!Number.isSafeInteger(limit) || limit <= 0) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `limit must be a positive integer (got ${String(limit)}).`, { option: 'limit' });
  }
  const messages = await readAfter(target, { topics: options.categories ?? null, after, limit });
  const last = messages.at(-1);
  const events = messages.filter((message) => message.streamId !== null).map(recordedEventOf);
  return {
    events: upcastAll(events, options.upcasters) as RecordedEvent<E>[],
    position: last ? { transactionId: last.transactionId, globalPosition: last.globalPosition } : after,
  };
}
