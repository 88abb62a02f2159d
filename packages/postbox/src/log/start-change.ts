import type { Executor } from '../sql/database.js';
import { comparePositions, type LogPosition } from './position.js';
import type { ReadStart } from './read-start.js';

export interface StartChangeInput {
  topics: readonly string[];
  /** The group's number of partitions; each entry of `from` is one of them. */
  partitions: number;
  /** Where each partition reads from now. */
  from: readonly { partition: number; after: LogPosition }[];
  /** The snapshot whose transactions the group leaves out now (one for all its partitions). */
  fromSkipVisibleIn: string | null;
  /** Where every partition will read from. */
  to: ReadStart;
}

export interface StartChange {
  partition: number;
  /** Committed messages the partition had passed and will read again. */
  readAgain: number;
  /** Committed messages the partition had still to read and will not. */
  skipped: number;
}

const countSql = `
with p as (
  select * from unnest($1::integer[], $2::xid8[], $3::bigint[]) as p(partition, from_transaction_id, from_position)
),
m as (
  select p.partition,
         (x.transaction_id, x.global_position) > (p.from_transaction_id, p.from_position)
           and ($8::pg_snapshot is null or not pg_visible_in_snapshot(x.transaction_id, $8::pg_snapshot)) as read_before,
         (x.transaction_id, x.global_position) > ($9::xid8, $10::bigint)
           and ($11::pg_snapshot is null or not pg_visible_in_snapshot(x.transaction_id, $11::pg_snapshot)) as read_after
  from postbox.messages x
  join p on p.partition = postbox.partition_of(x.bucket, $4)
  where x.topic = any($5::text[]) and (x.transaction_id, x.global_position) > ($6::xid8, $7::bigint)
),
c as (
  select m.partition,
         count(*) filter (where m.read_after and not m.read_before) as read_again,
         count(*) filter (where m.read_before and not m.read_after) as skipped
  from m group by m.partition
)
select p.partition, coalesce(c.read_again, 0) as read_again, coalesce(c.skipped, 0) as skipped
from p left join c on c.partition = p.partition
order by p.partition`;

/**
 * What moving a group's start changes, per partition: how many committed messages of its topics it
 * will read again, and how many it will skip. One pass over the rows after the earliest of the old
 * and new positions. Messages of transactions still open are not counted: they are not visible yet.
 */
export async function countStartChange(db: Executor, input: StartChangeInput): Promise<StartChange[]> {
  if (input.from.length === 0) return [];
  const lowest = input.from.reduce((low, entry) => (comparePositions(entry.after, low) < 0 ? entry.after : low), input.to.after);
  const { rows } = await db.query<{ partition: number; read_again: number | string; skipped: number | string }>(countSql, [
    input.from.map((entry) => entry.partition),
    input.from.map((entry) => String(entry.after.transactionId)),
    input.from.map((entry) => String(entry.after.globalPosition)),
    input.partitions,
    [...input.topics],
    String(lowest.transactionId),
    String(lowest.globalPosition),
    input.fromSkipVisibleIn,
    String(input.to.after.transactionId),
    String(input.to.after.globalPosition),
    input.to.skipVisibleIn,
  ]);
  return rows.map((row) => ({ partition: Number(row.partition), readAgain: Number(row.read_again), skipped: Number(row.skipped) }));
}
