import { defaults } from '../config/defaults.js';
import { ValidationError } from '../errors/postbox-error.js';
import { type AsOf, readStreamRange } from '../log/read.js';
import type { Executor } from '../sql/database.js';
import { executorFor, type Target } from '../sql/target.js';
import type { EventLike, RecordedEvent, StreamState } from './event.js';
import { recordedEventOf } from './recorded-event.js';
import { checkStreamId } from './stream-id.js';
import { readInfo } from './stream-info.js';
import { type Upcasters, upcastAll } from './upcasters.js';

export interface ReadStreamOptions {
  /** The first position read: 1 forward, the last event backward, by default. */
  from?: number;
  /** The last position read (inclusive): the end forward, 1 backward, by default. */
  to?: number;
  maxCount?: number;
  direction?: 'forward' | 'backward';
  upcasters?: Upcasters;
}

export interface StreamReadResult<E extends EventLike = EventLike> {
  streamId: string;
  /** `tombstoned` and `archived` streams still return their events; `no_stream` returns none. */
  state: StreamState;
  version: number;
  metadata: Record<string, unknown>;
  events: RecordedEvent<E>[];
}

function position(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `${name} must be a non-negative integer (got ${String(value)}).`, { option: name });
  }
  return value;
}

/** Reads a stream's events in order (or backward), with its state and version. */
export async function readStream<E extends EventLike = EventLike>(
  target: Target,
  streamId: string,
  options: ReadStreamOptions = {},
): Promise<StreamReadResult<E>> {
  checkStreamId(streamId);
  const db = executorFor(target);
  const maxCount = position('maxCount', options.maxCount) ?? Number.MAX_SAFE_INTEGER;
  const backward = options.direction === 'backward';
  const info = await readInfo(db, streamId);
  const events: RecordedEvent[] = [];
  if (info.version > 0 && maxCount > 0) {
    const from = position('from', options.from) ?? (backward ? info.version : 1);
    const to = position('to', options.to) ?? (backward ? 1 : info.version);
    await readRange(db, streamId, backward, from, to, maxCount, (batch) => {
      events.push(...batch);
    });
  }
  return {
    streamId,
    state: info.state,
    version: info.version,
    metadata: info.metadata,
    events: upcastAll(events, options.upcasters) as RecordedEvent<E>[],
  };
}

/** Reads a range in pages of readBatchSize, handing each page over as it comes. */
export async function readRange(
  db: Executor,
  streamId: string,
  backward: boolean,
  from: number,
  to: number,
  maxCount: number,
  onPage: (events: RecordedEvent[]) => void | Promise<void>,
  asOf?: AsOf,
): Promise<number> {
  let read = 0;
  let next = from;
  for (;;) {
    const limit = Math.min(defaults.eventStore.readBatchSize, maxCount - read);
    if (limit <= 0 || (backward ? next < to : next > to)) return read;
    const messages = await readStreamRange(db, { streamId, from: next, to, backward, limit, asOf });
    if (messages.length === 0) return read;
    const events = messages.map(recordedEventOf);
    read += events.length;
    await onPage(events);
    const last = events.at(-1) as RecordedEvent;
    next = backward ? last.streamPosition - 1 : last.streamPosition + 1;
    if (messages.length < limit) return read;
  }
}
