import type { Executor } from '../sql/database.js';
import type { StoredTransactionId } from './stored-transaction-id.js';
import { nextTransactionIdSql } from './transaction-id-supply.js';
import { TransactionIdsBehindError } from './transaction-ids-behind-error.js';

/**
 * Whether this server's transaction ids are ahead of every id stored in the log. `behind` is the
 * sure sign of a restore or cut-over from another server: a stored id at or above the next id this
 * server will assign. New messages would then sort before the old ones and the checkpoints, and
 * readers would skip them.
 */
export type TransactionIdCheck =
  | { status: 'ok'; nextTransactionId: bigint; highestStored: StoredTransactionId | null }
  | { status: 'behind'; nextTransactionId: bigint; highestStored: StoredTransactionId };

/**
 * The highest id of each place that stores one, in index probes only: the log's highest per topic
 * (a skip scan over messages_reader_idx: after a restore the newest rows by position can be new
 * ones with low ids, so the newest row alone would not do), every partition's checkpoint, and every
 * start snapshot (its xmax - 1, the newest transaction it speaks of). It takes no transaction id.
 */
const checkSql = `
with recursive topics(topic) as (
  (select m.topic from postbox.messages m order by m.topic limit 1)
  union all
  select (select m.topic from postbox.messages m where m.topic > t.topic order by m.topic limit 1)
  from topics t where t.topic is not null
),
stored as (
  select 'postbox.messages.transaction_id' as column_name, t.topic, top.global_position, null::text as group_name,
         null::integer as partition, top.transaction_id as value
  from topics t
  cross join lateral (
    select m.transaction_id, m.global_position from postbox.messages m
    where m.topic = t.topic order by m.transaction_id desc, m.global_position desc limit 1
  ) top
  where t.topic is not null
  union all
  select 'postbox.group_partitions.checkpoint_transaction_id', null, null, p.group_name, p.partition, p.checkpoint_transaction_id
  from postbox.group_partitions p
  union all
  select 'postbox.consumer_groups.start_snapshot', null, null, g.group_name, null,
         (pg_snapshot_xmax(g.start_snapshot)::text::numeric - 1)::text::xid8
  from postbox.consumer_groups g where g.start_snapshot is not null
)
select ${nextTransactionIdSql}::text as next_transaction_id,
       s.column_name, s.topic, s.global_position::text as global_position, s.group_name, s.partition, s.value::text as value
from (select 1) one
left join lateral (select * from stored order by value desc limit 1) s on true`;

interface CheckRow {
  next_transaction_id: string;
  column_name: string | null;
  topic: string | null;
  global_position: string | null;
  group_name: string | null;
  partition: number | null;
  value: string | null;
}

/** Compares the ids stored in the log with the next id this server will assign. Cheap: run it at every start. */
export async function checkTransactionIds(db: Executor): Promise<TransactionIdCheck> {
  const { rows } = await db.query<CheckRow>(checkSql);
  const row = rows[0] as CheckRow;
  const nextTransactionId = BigInt(row.next_transaction_id);
  if (row.value === null || row.column_name === null) return { status: 'ok', nextTransactionId, highestStored: null };
  const highestStored: StoredTransactionId = {
    value: BigInt(row.value),
    column: row.column_name,
    topic: row.topic,
    globalPosition: row.global_position === null ? null : BigInt(row.global_position),
    group: row.group_name,
    partition: row.partition === null ? null : Number(row.partition),
  };
  return highestStored.value >= nextTransactionId
    ? { status: 'behind', nextTransactionId, highestStored }
    : { status: 'ok', nextTransactionId, highestStored };
}

/** Refuses to go on when this server's ids are behind the log's (see checkTransactionIds). */
export async function assertTransactionIdsCurrent(db: Executor): Promise<void> {
  const check = await checkTransactionIds(db);
  if (check.status === 'behind') throw new TransactionIdsBehindError(check.nextTransactionId, check.highestStored);
}
