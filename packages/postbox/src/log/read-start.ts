import { PostboxError, ValidationError } from '../errors/postbox-error.js';
import type { Executor } from '../sql/database.js';
import { beginningOfLog, type LogPosition } from './position.js';

/**
 * Where a reader of the log starts: strictly after a position, leaving out the rows of the
 * transactions visible in a snapshot (see readAfter's skipVisibleIn).
 */
export interface ReadStart {
  after: LogPosition;
  /** A pg_snapshot as text; null when no row after the position is left out. */
  skipVisibleIn: string | null;
}

/** Every message still in the log. */
export const startOfLog: ReadStart = Object.freeze({ after: beginningOfLog, skipVisibleIn: null });

/**
 * The start that reads the transactions from a cut on, and of the transactions before it only
 * those still open now, when they commit: after (least(watermark, cut), 0), leaving out what a
 * snapshot of xmin that position, xmax the cut and the open transactions below the cut calls
 * visible, that is the transactions committed below the cut. Without a cut (null), the cut is the
 * snapshot's xmax (past every transaction committed now) and the snapshot is the current one: the
 * `latest` start of a new group (ensureGroup), which skips what is committed now and never a
 * transaction still open. The cut is found in the same statement, so in the same snapshot as the
 * open transactions it is compared with.
 */
function cutSql(cut: string): string {
  return `
with c as (
  select s.snap, coalesce(${cut}, pg_snapshot_xmax(s.snap)) as cut
  from (select pg_current_snapshot() as snap) s
)
select least(pg_snapshot_xmin(c.snap), c.cut)::text as after_transaction_id,
       least(pg_snapshot_xmin(c.snap), c.cut)::text || ':' || c.cut::text || ':' ||
         coalesce((select string_agg(x::text, ',' order by x) from pg_snapshot_xip(c.snap) as x where x < c.cut), '') as skip
from c`;
}

const latestSql = cutSql('null::xid8');
const timeSql = cutSql('(select min(m.transaction_id) from postbox.messages m where m.created_at >= $1::timestamptz)');

interface CutRow {
  after_transaction_id: string;
  skip: string;
}

function toStart(row: CutRow | undefined): ReadStart {
  if (!row) throw new PostboxError('POSTBOX_ERR_UNEXPECTED', 'The read start query returned no row.');
  return { after: { transactionId: BigInt(row.after_transaction_id), globalPosition: 0n }, skipVisibleIn: row.skip };
}

/** The start at the end of the log now: what commits from now on, and the transactions still open (see cutSql). */
export async function startAtLatest(db: Executor): Promise<ReadStart> {
  const { rows } = await db.query<CutRow>(latestSql);
  return toStart(rows[0]);
}

/**
 * The start at a time, by the messages' createdAt: the time their transaction began (PostgreSQL's
 * now()), not when it committed, which the log does not record. A transaction that began at or
 * after `time` committed after it, and so did every transaction that took its id after such a
 * one. So the start is the cut at the smallest transaction id, over the whole log, whose messages
 * were created at or after `time`; transactions open now are read too, since they commit later
 * still. Every message read then committed after `time`. Missed are only the messages of a
 * transaction that began before `time`, took its id before any transaction that began after it,
 * and committed after `time`: to read those too, reset to a time earlier by the longest such
 * transaction. With no message created at or after `time`, the start is the latest one.
 * A time after the database's clock is refused: nothing has committed after it yet.
 */
export async function startAtTime(db: Executor, time: Date): Promise<ReadStart> {
  const at = time.toISOString();
  const { rows } = await db.query<{ now: string; future: boolean }>(
    `select to_json(now()) #>> '{}' as now, $1::timestamptz > now() as future`,
    [at],
  );
  const row = rows[0];
  if (row?.future) {
    throw new ValidationError(
      'POSTBOX_ERR_BAD_OPTION',
      `${at} is after the database's current time (${row.now}): no message can have committed after it yet.`,
      { option: 'to' },
    );
  }
  const { rows: start } = await db.query<CutRow>(timeSql, [at]);
  return toStart(start[0]);
}

/** A message's place in the log, or undefined when no committed message has that id. */
export async function findMessage(db: Executor, messageId: string): Promise<{ topic: string; position: LogPosition } | undefined> {
  const { rows } = await db.query<{ topic: string; transaction_id: string; global_position: string }>(
    `select topic, transaction_id::text as transaction_id, global_position::text as global_position
     from postbox.messages where message_id = $1::uuid`,
    [messageId],
  );
  const row = rows[0];
  if (!row) return undefined;
  return { topic: row.topic, position: { transactionId: BigInt(row.transaction_id), globalPosition: BigInt(row.global_position) } };
}

/** The start whose first message is the one at `position`, and after it everything in read order. */
export function startAtPosition(position: LogPosition): ReadStart {
  return { after: { transactionId: position.transactionId, globalPosition: position.globalPosition - 1n }, skipVisibleIn: null };
}
