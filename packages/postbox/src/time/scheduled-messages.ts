import { validate as isUuid } from 'uuid';
import { defaults } from '../config/defaults.js';
import { ValidationError } from '../errors/postbox-error.js';
import { type AppendRow, messageJson } from '../log/append.js';
import type { MessageHeaders } from '../log/message.js';
import type { Executor } from '../sql/database.js';
import { type DeliveryTime, deliveryTimeJson } from './delivery-time.js';

/** A message checked and serialised, with the time it falls due. */
export interface ScheduledRow extends AppendRow {
  time: DeliveryTime;
}

/** A message waiting for its time, as listed. */
export interface ScheduledMessage<P = unknown> {
  /** The id it will have in the log. */
  id: string;
  topic: string;
  type: string;
  key: string | null;
  payload: P;
  headers: MessageHeaders;
  dueAt: Date;
  createdAt: Date;
}

export interface ScheduledFilter {
  topic?: string;
  key?: string;
  /** Only messages due before this time. */
  dueBefore?: Date;
  /** At most this many, the soonest due first; defaults.timekeeper.listLimit by default. */
  limit?: number;
}

/**
 * Writes messages to the waiting list in the caller's transaction, through the one statement that
 * does so (postbox.schedule_messages, which postbox.publish_at also calls): they exist if and only if
 * that transaction commits, and wake the timekeeper when due before it next looks.
 */
export async function writeScheduled(executor: Executor, rows: readonly ScheduledRow[]): Promise<void> {
  if (rows.length === 0) return;
  const json = `[${rows.map((row) => messageJson(row, deliveryTimeJson(row.time))).join(',')}]`;
  await executor.query('select from postbox.schedule_messages($1::jsonb)', [json]);
}

function checkId(id: unknown): string {
  if (typeof id !== 'string' || !isUuid(id)) {
    throw new ValidationError(
      'POSTBOX_ERR_BAD_OPTION',
      `A scheduled message id must be a UUID (got ${JSON.stringify(String(id).slice(0, 60))}).`,
      {
        field: 'id',
      },
    );
  }
  return id.toLowerCase();
}

/**
 * Takes a message off the waiting list; true when it was waiting. False when it is not waiting (any
 * more): already moved into the log, cancelled before, or never scheduled. A cancel and the move
 * race by nature, so the answer is a fact to act on rather than an error. In the caller's transaction
 * the cancel commits or rolls back with it; the timekeeper meanwhile leaves the message where it is.
 */
export async function cancelScheduled(executor: Executor, id: string): Promise<boolean> {
  const { rowCount } = await executor.query('delete from postbox.scheduled_messages where message_id = $1::uuid', [checkId(id)]);
  return rowCount > 0;
}

interface ScheduledRecord {
  message_id: string;
  topic: string;
  type: string;
  key: string | null;
  payload: unknown;
  headers: MessageHeaders;
  due_at: number;
  created_at: number;
}

function checkLimit(limit: unknown): number {
  if (!Number.isSafeInteger(limit) || (limit as number) <= 0) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `limit must be a positive whole number (got ${String(limit)}).`, {
      option: 'limit',
    });
  }
  return limit as number;
}

/** The messages waiting for their time, the soonest due first (of one time, the first written first). */
export async function listScheduled(db: Executor, filter: ScheduledFilter = {}): Promise<ScheduledMessage[]> {
  const limit = checkLimit(filter.limit ?? defaults.timekeeper.listLimit);
  if (filter.dueBefore !== undefined && (!(filter.dueBefore instanceof Date) || Number.isNaN(filter.dueBefore.getTime()))) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'dueBefore must be a valid Date.', { option: 'dueBefore' });
  }
  const { rows } = await db.query<ScheduledRecord>(
    `select message_id, topic, type, key, payload, headers,
            (extract(epoch from due_at) * 1000)::float8 as due_at, (extract(epoch from created_at) * 1000)::float8 as created_at
     from postbox.scheduled_messages
     where ($1::text is null or topic = $1) and ($2::text is null or key = $2) and ($3::timestamptz is null or due_at < $3)
     order by due_at, seq
     limit $4`,
    [filter.topic ?? null, filter.key ?? null, filter.dueBefore?.toISOString() ?? null, limit],
  );
  return rows.map((row) => ({
    id: row.message_id,
    topic: row.topic,
    type: row.type,
    key: row.key,
    payload: row.payload,
    headers: row.headers,
    dueAt: new Date(row.due_at),
    createdAt: new Date(row.created_at),
  }));
}
