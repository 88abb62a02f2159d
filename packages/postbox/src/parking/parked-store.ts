import { errorCodeOf } from '../deadletters/dead-letter-store.js';
import type { MessageHeaders } from '../log/message.js';
import { bucketOf } from '../log/partition.js';
import type { LogPosition } from '../log/position.js';
import type { Executor } from '../sql/database.js';
import { type ParkedMessage, type ParkedStatus, parkedColumns, toParkedMessage } from './parked-message.js';

/** A message of the log as a parked row copies it whole. */
export interface ParkedCopy {
  messageId: string;
  topic: string;
  type: string;
  key: string | null;
  payload: unknown;
  headers: MessageHeaders;
  position: LogPosition;
  createdAt: Date;
}

/** How a parked message failed, and when it is attempted next. */
export interface ParkedFailure {
  /** Failed attempts in all, and those made from parking. */
  attempts: number;
  parkedAttempts: number;
  firstFailedAt: Date;
  lastFailedAt: Date;
  error: Error;
  /** From now (the database's clock) to the next attempt. */
  delayMs: number;
}

export interface NewParkedRow {
  group: string;
  handler: string;
  copy: ParkedCopy;
  status: ParkedStatus;
  /** For a waiting row; followers and held rows have none. */
  failure?: ParkedFailure;
}

/** A row of a key's queue, with whether its time has come. */
export interface LaneRow extends ParkedMessage {
  due: boolean;
}

const insertSql = `
insert into postbox.parked_messages (group_name, handler, message_id, topic, type, key, bucket, payload, headers, transaction_id,
  global_position, created_at, status, attempts, parked_attempts, first_failed_at, last_failed_at, next_attempt_at, error_code,
  error_message)
select r.group_name, r.handler, r.message_id, r.topic, r.type, r.key, r.bucket, coalesce(r.payload, 'null'::jsonb), r.headers,
       r.transaction_id::xid8, r.global_position, r.created_at, r.status, r.attempts, r.parked_attempts, r.first_failed_at,
       r.last_failed_at, clock_timestamp() + r.delay_ms * interval '1 millisecond', r.error_code, r.error_message
from jsonb_to_recordset($1::jsonb) as r(group_name text, handler text, message_id text, topic text, type text, key text,
  bucket smallint, payload jsonb, headers jsonb, transaction_id text, global_position bigint, created_at timestamptz, status text,
  attempts integer, parked_attempts integer, first_failed_at timestamptz, last_failed_at timestamptz, delay_ms double precision,
  error_code text, error_message text)
on conflict (group_name, message_id) do nothing`;

/**
 * Parks messages, in the caller's transaction. A message its group has already parked is left as it
 * is, so a batch delivered again parks nothing twice.
 */
export async function parkMessages(db: Executor, rows: readonly NewParkedRow[]): Promise<void> {
  if (rows.length === 0) return;
  const records = rows.map(({ group, handler, copy, status, failure }) => ({
    group_name: group,
    handler,
    message_id: copy.messageId,
    topic: copy.topic,
    type: copy.type,
    key: copy.key,
    bucket: bucketOf(copy.key, copy.messageId),
    payload: copy.payload,
    headers: copy.headers,
    transaction_id: String(copy.position.transactionId),
    global_position: String(copy.position.globalPosition),
    created_at: copy.createdAt.toISOString(),
    status,
    attempts: failure?.attempts ?? 0,
    parked_attempts: failure?.parkedAttempts ?? 0,
    first_failed_at: failure?.firstFailedAt.toISOString() ?? null,
    last_failed_at: failure?.lastFailedAt.toISOString() ?? null,
    delay_ms: failure ? failure.delayMs : null,
    error_code: failure ? errorCodeOf(failure.error) : null,
    error_message: failure ? failure.error.message || failure.error.name : null,
  }));
  await db.query(insertSql, [JSON.stringify(records)]);
}

/** The keys, of those given, that a group has parked messages of. */
export async function parkedKeys(db: Executor, group: string, keys: readonly string[]): Promise<string[]> {
  if (keys.length === 0) return [];
  const { rows } = await db.query<{ key: string }>(
    'select distinct p.key from postbox.parked_messages p where p.group_name = $1 and p.key = any($2::text[])',
    [group, keys],
  );
  return rows.map((row) => row.key);
}

/** Where one partition of a group stands: `partition` of `partitions`. */
export interface PartitionOfGroup {
  group: string;
  partition: number;
  partitions: number;
}

/** The partition's parked messages whose time has come, soonest first. */
export async function dueParked(db: Executor, where: PartitionOfGroup, limit: number): Promise<LaneRow[]> {
  const { rows } = await db.query(
    `select ${parkedColumns}, true as due from postbox.parked_messages p
     where p.group_name = $1 and p.next_attempt_at <= clock_timestamp() and postbox.partition_of(p.bucket, $3) = $2
     order by p.next_attempt_at, p.id
     limit $4`,
    [where.group, where.partition, where.partitions, limit],
  );
  return rows.map(toLaneRow);
}

/** Milliseconds until the partition's next parked message falls due (0 when one is due), or null when none waits. */
export async function untilNextParked(db: Executor, where: PartitionOfGroup): Promise<number | null> {
  const { rows } = await db.query<{ ms: number | null }>(
    `select greatest(0, extract(epoch from (min(p.next_attempt_at) - clock_timestamp())) * 1000)::float8 as ms
     from postbox.parked_messages p
     where p.group_name = $1 and p.next_attempt_at is not null and postbox.partition_of(p.bucket, $3) = $2`,
    [where.group, where.partition, where.partitions],
  );
  const ms = rows[0]?.ms;
  return ms === null || ms === undefined ? null : Number(ms);
}

/**
 * The queue of a key (of the one row, for a message without a key), in log order, up to `limit`
 * rows. With `lock`, the rows are locked for the caller's transaction, so that an operator's release
 * or discard waits for it.
 */
export async function parkedLane(
  db: Executor,
  group: string,
  head: Pick<ParkedMessage, 'id' | 'key'>,
  limit: number,
  lock: boolean,
): Promise<LaneRow[]> {
  const select = `select ${parkedColumns}, coalesce(p.next_attempt_at <= clock_timestamp(), false) as due from postbox.parked_messages p`;
  const locking = lock ? 'for update of p' : '';
  const { rows } =
    head.key === null
      ? await db.query(`${select} where p.id = $1::bigint ${locking}`, [head.id])
      : await db.query(
          `${select} where p.group_name = $1 and p.key = $2 order by p.transaction_id, p.global_position limit $3 ${locking}`,
          [group, head.key, limit],
        );
  return rows.map(toLaneRow);
}

function toLaneRow(row: Record<string, any>): LaneRow {
  return { ...toParkedMessage(row), due: row.due === true };
}

/** Takes a row out of parking (handled, or let go) and lets the next row of its key come due. */
export async function unpark(db: Executor, id: string): Promise<void> {
  await db.query('select postbox.unpark($1::bigint)', [id]);
}

/** A parked message failed again (or a follower for the first time): it waits for its next attempt. */
export async function rescheduleParked(db: Executor, id: string, failure: ParkedFailure): Promise<void> {
  await db.query(
    `update postbox.parked_messages
     set status = 'waiting', attempts = $2, parked_attempts = $3, first_failed_at = $4, last_failed_at = $5,
         next_attempt_at = clock_timestamp() + $6 * interval '1 millisecond', error_code = $7, error_message = $8
     where id = $1::bigint`,
    [
      id,
      failure.attempts,
      failure.parkedAttempts,
      failure.firstFailedAt,
      failure.lastFailedAt,
      failure.delayMs,
      errorCodeOf(failure.error),
      failure.error.message || failure.error.name,
    ],
  );
}

/** The parked message went to dead letters and holds its key's later messages until that dead letter is acted on. */
export async function holdParked(db: Executor, id: string): Promise<void> {
  await db.query(`update postbox.parked_messages set status = 'dead_lettered', next_attempt_at = null where id = $1::bigint`, [id]);
}
