import type { MessageHeaders } from '../log/message.js';
import type { LogPosition } from '../log/position.js';

/**
 * waiting: it failed and is attempted again at nextAttemptAt. follower: it waits behind an earlier
 * message of its key and has not been attempted from parking. dead_lettered: it went to dead letters
 * and holds the messages behind it until that dead letter is retried and handled, or discarded.
 */
export type ParkedStatus = 'waiting' | 'follower' | 'dead_lettered';

export const parkedStatuses: readonly ParkedStatus[] = Object.freeze(['waiting', 'follower', 'dead_lettered']);

/** A message its group parked: a whole copy of it, and where its retries stand. */
export interface ParkedMessage {
  /** The parked row's id (digits, as a string). */
  id: string;
  group: string;
  handler: string;
  messageId: string;
  topic: string;
  type: string;
  key: string | null;
  /** The message's bucket: its partition in the group is partitionOfBucket(bucket, partitions). */
  bucket: number;
  payload: unknown;
  headers: MessageHeaders;
  /** Its place in the log, the order of a key's parked messages. */
  position: LogPosition;
  createdAt: Date;
  status: ParkedStatus;
  /** Failed attempts in all, the quick ones in process included. */
  attempts: number;
  /** Attempts made from parking. */
  parkedAttempts: number;
  firstFailedAt: Date | null;
  lastFailedAt: Date | null;
  /** When it is attempted next; null while it waits behind an earlier message, or is held. */
  nextAttemptAt: Date | null;
  errorCode: string | null;
  errorMessage: string | null;
  parkedAt: Date;
  /** The open dead letter that holds its key, for a dead_lettered message. */
  deadLetterId: string | null;
}

/** The columns every read of postbox.parked_messages selects, as `p`, with `d` an open dead letter of it. */
export const parkedColumns = `p.id::text as id, p.group_name, p.handler, p.message_id, p.topic, p.type, p.key, p.bucket,
  p.payload, p.headers, p.transaction_id::text as transaction_id, p.global_position, p.created_at, p.status, p.attempts,
  p.parked_attempts, p.first_failed_at, p.last_failed_at, p.next_attempt_at, p.error_code, p.error_message, p.parked_at`;

/** The open dead letter of a dead_lettered row, joined as `d`. */
export const deadLetterJoin = `left join postbox.dead_letters d
  on p.status = 'dead_lettered' and d.group_name = p.group_name and d.message_id = p.message_id and d.status in ('pending', 'retrying')`;

const date = (value: unknown): Date | null => (value === null || value === undefined ? null : new Date(value as string));

export function toParkedMessage(row: Record<string, any>): ParkedMessage {
  return {
    id: row.id,
    group: row.group_name,
    handler: row.handler,
    messageId: row.message_id,
    topic: row.topic,
    type: row.type,
    key: row.key,
    bucket: Number(row.bucket),
    payload: row.payload,
    headers: row.headers,
    position: { transactionId: BigInt(row.transaction_id), globalPosition: BigInt(row.global_position) },
    createdAt: new Date(row.created_at),
    status: row.status,
    attempts: Number(row.attempts),
    parkedAttempts: Number(row.parked_attempts),
    firstFailedAt: date(row.first_failed_at),
    lastFailedAt: date(row.last_failed_at),
    nextAttemptAt: date(row.next_attempt_at),
    errorCode: row.error_code,
    errorMessage: row.error_message,
    parkedAt: new Date(row.parked_at),
    deadLetterId: row.dead_letter_id ?? null,
  };
}
