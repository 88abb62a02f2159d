import type { Executor } from '../sql/database.js';
import { nextTransactionIdSql } from './transaction-id-supply.js';

/**
 * Every place in the Postbox schema that stores a transaction id, as the remap changes it. A
 * migration that adds another must add it here (test/restore.test.ts compares this list with the
 * catalog). Dead letters keep their log position as text, `transaction_id/global_position`; parked
 * messages keep it in columns of their own.
 */
export const remappedColumns: readonly string[] = Object.freeze([
  'postbox.messages.transaction_id',
  'postbox.group_partitions.checkpoint_transaction_id',
  'postbox.consumer_groups.start_snapshot',
  'postbox.dead_letters.source_position',
  'postbox.parked_messages.transaction_id',
]);

/** What the remap will change (or changed), counted while its tables are built. */
export interface RemapPlan {
  /** The next transaction id of the server when the plan was made. */
  nextTransactionId: bigint;
  /** Rows restored with the log, and rows written on this server since; and their distinct transactions. */
  restoredRows: number;
  rowsWrittenHere: number;
  restoredTransactions: number;
  transactionsWrittenHere: number;
  /** The highest global position of a restored row; the rows after it were written here. Null when none was restored. */
  restoredUpTo: bigint | null;
  /** Checkpoints, start snapshots, dead letters and parked messages whose stored id changes. */
  checkpoints: number;
  startSnapshots: number;
  deadLetters: number;
  parkedMessages: number;
  /** The ids the log and its positions get, lowest and highest; null for an empty schema. */
  lowestNewId: bigint | null;
  highestNewId: bigint | null;
}

/**
 * Rows restored with the log are told from rows written on this server since by where they sit
 * and by their xmin, the id of the transaction that stored each row version here:
 *
 * - A row written here has an xmin at or above its transaction_id (its own transaction, or one of
 *   its subtransactions, which always come later), below the next id, and shared with no row of
 *   another transaction_id.
 * - A restored row was stored by the restore (one COPY stores rows of many transactions under one
 *   xmin), or by a replication apply; its transaction_id is the old server's. When the row breaks
 *   any rule above, it is surely restored.
 * - A row written here comes after every restored row by global_position: the identity sequence is
 *   restored with the data by pg_dump, and after a logical-replication cut-over it must be moved
 *   past the copied rows before anything is written (or the inserts fail on the primary key).
 *
 * So the rows after the last surely restored one, by position, are the ones written here. xmin is
 * the raw 32-bit id (freezing keeps it since PostgreSQL 9.4), widened here to the full id nearest
 * the next one. When no row is surely restored, every row counts as written here: at worst
 * messages are delivered again, never skipped.
 */
const classifySql = `
with next as (select ${nextTransactionIdSql}::text::numeric as id),
shared_xmins as (
  select m.xmin::text::bigint as xmin from postbox.messages m group by 1 having count(distinct m.transaction_id) > 1
)
select max(m.global_position)::text as restored_up_to, (select id from next)::text as next_transaction_id
from postbox.messages m, next n
where m.transaction_id::text::numeric >= n.id
   or n.id + mod(mod(m.xmin::text::numeric - n.id + 2147483648, 4294967296) + 4294967296, 4294967296) - 2147483648
      < m.transaction_id::text::numeric
   or m.xmin::text::bigint in (select s.xmin from shared_xmins s)`;

/** The remap's working tables, private to the transaction and dropped at its end. */
const remapTablesSql = `
create temp table postbox_remap_rows (
  written_here boolean not null,
  old_id xid8 not null,
  rank bigint not null,
  new_id xid8 not null,
  row_count bigint not null,
  primary key (written_here, old_id)
) on commit drop;
create temp table postbox_remap_values (old_id xid8 primary key, new_id xid8 not null) on commit drop;
create temp table postbox_remap_snapshots (
  group_name text primary key,
  old_snapshot pg_snapshot not null,
  new_snapshot pg_snapshot not null
) on commit drop;
create temp table postbox_remap_dead_letters (id bigint primary key, new_position text not null) on commit drop;
create temp table postbox_remap_parked (id bigint primary key, new_id xid8 not null) on commit drop;`;

/**
 * The new id of each transaction of the log: ranked with the restored ones first and those written
 * here after them, each in its own order, new(t) = 4 + 2 × rank. Every row keeps its global
 * position, so rows keep their order, and rows written here come after everything restored. The
 * even values leave the odd ones between them for the other stored ids; 3 is the lowest id a
 * transaction can have (0 to 2 are PostgreSQL's own).
 */
const rankRowsSql = `
insert into postbox_remap_rows (written_here, old_id, rank, new_id, row_count)
select i.written_here, i.transaction_id, i.rank, (4 + 2 * i.rank)::text::xid8, i.row_count
from (
  select c.written_here, c.transaction_id, count(*) as row_count,
         row_number() over (order by c.written_here, c.transaction_id) - 1 as rank
  from (select m.global_position > coalesce($1::bigint, 0) as written_here, m.transaction_id from postbox.messages m) c
  group by c.written_here, c.transaction_id
) i`;

/**
 * The new value of every other stored id, all of the old server: a checkpoint, a start snapshot's
 * bounds and in-progress list, a dead letter's or a parked message's position. An id of a restored row's transaction
 * takes that row's new id; any other takes the odd value 3 + 2 × (restored transactions below it),
 * which sits between the same two transactions as before. So every (id, position) comparison
 * between a stored position and a restored row comes out as it did, and all of them lie below the
 * rows written here. The beginning of the log, 0, stays 0.
 */
const mapValuesSql = `
insert into postbox_remap_values (old_id, new_id)
select v.old_id,
       case when v.old_id = '0'::xid8 then v.old_id else coalesce(
         (select r.new_id from postbox_remap_rows r where not r.written_here and r.old_id = v.old_id),
         (3 + 2 * coalesce((select r.rank + 1 from postbox_remap_rows r where not r.written_here and r.old_id < v.old_id
                            order by r.old_id desc limit 1), 0))::text::xid8) end
from (
  select p.checkpoint_transaction_id as old_id from postbox.group_partitions p
  union
  select pg_snapshot_xmin(g.start_snapshot) from postbox.consumer_groups g where g.start_snapshot is not null
  union
  select pg_snapshot_xmax(g.start_snapshot) from postbox.consumer_groups g where g.start_snapshot is not null
  union
  select x.id from postbox.consumer_groups g cross join lateral pg_snapshot_xip(g.start_snapshot) as x(id) where g.start_snapshot is not null
  union
  select split_part(d.source_position, '/', 1)::xid8 from postbox.dead_letters d
  where d.source = 'log' and d.source_position ~ '^[0-9]{1,19}/[0-9]{1,19}$'
  union
  select p.transaction_id from postbox.parked_messages p
) v`;

/**
 * A start snapshot says which transactions a `latest` group skips. Its bounds take their new
 * values; of its in-progress list only restored rows' transactions matter to the log, and keep
 * their order.
 */
const newSnapshotsSql = `
insert into postbox_remap_snapshots (group_name, old_snapshot, new_snapshot)
select g.group_name, g.start_snapshot,
       ((select v.new_id from postbox_remap_values v where v.old_id = pg_snapshot_xmin(g.start_snapshot))::text || ':' ||
        (select v.new_id from postbox_remap_values v where v.old_id = pg_snapshot_xmax(g.start_snapshot))::text || ':' ||
        coalesce((select string_agg(r.new_id::text, ',' order by r.new_id)
                  from pg_snapshot_xip(g.start_snapshot) as x(id)
                  join postbox_remap_rows r on not r.written_here and r.old_id = x.id), ''))::pg_snapshot
from postbox.consumer_groups g where g.start_snapshot is not null`;

/** A dead letter of the log takes its row's new id when that row is still there, else the value of its old id. */
const deadLetterIdsSql = `
insert into postbox_remap_dead_letters (id, new_position)
select d.id, coalesce(r.new_id, v.new_id)::text || '/' || split_part(d.source_position, '/', 2)
from postbox.dead_letters d
join postbox_remap_values v on v.old_id = split_part(d.source_position, '/', 1)::xid8
left join postbox_remap_rows r
  on r.old_id = v.old_id and r.written_here = (split_part(d.source_position, '/', 2)::bigint > coalesce($1::bigint, 0))
where d.source = 'log' and d.source_position ~ '^[0-9]{1,19}/[0-9]{1,19}$'`;

/** A parked message, a copy of a log row, takes that row's new id the same way. */
const parkedIdsSql = `
insert into postbox_remap_parked (id, new_id)
select p.id, coalesce(r.new_id, v.new_id)
from postbox.parked_messages p
join postbox_remap_values v on v.old_id = p.transaction_id
left join postbox_remap_rows r on r.old_id = p.transaction_id and r.written_here = (p.global_position > coalesce($1::bigint, 0))`;

const countsSql = `
select
  (select coalesce(sum(row_count), 0) from postbox_remap_rows where not written_here)::text as restored_rows,
  (select coalesce(sum(row_count), 0) from postbox_remap_rows where written_here)::text as rows_written_here,
  (select count(*) from postbox_remap_rows where not written_here)::int as restored_transactions,
  (select count(*) from postbox_remap_rows where written_here)::int as transactions_written_here,
  (select count(*) from postbox.group_partitions p join postbox_remap_values v on v.old_id = p.checkpoint_transaction_id
   where v.new_id <> v.old_id)::int as checkpoints,
  (select count(*) from postbox_remap_snapshots where new_snapshot::text <> old_snapshot::text)::int as start_snapshots,
  (select count(*) from postbox_remap_dead_letters n join postbox.dead_letters d on d.id = n.id
   where n.new_position <> d.source_position)::int as dead_letters,
  (select count(*) from postbox_remap_parked n join postbox.parked_messages p on p.id = n.id
   where n.new_id <> p.transaction_id)::int as parked_messages,
  (select min(id) from (select min(new_id) as id from postbox_remap_rows union all
                        select min(new_id) from postbox_remap_values where new_id <> '0'::xid8) a)::text as lowest,
  (select max(id) from (select max(new_id) as id from postbox_remap_rows union all
                        select max(new_id) from postbox_remap_values) a)::text as highest`;

interface CountsRow {
  restored_rows: string;
  rows_written_here: string;
  restored_transactions: number;
  transactions_written_here: number;
  checkpoints: number;
  start_snapshots: number;
  dead_letters: number;
  parked_messages: number;
  lowest: string | null;
  highest: string | null;
}

/**
 * Works out the new id of every stored transaction id, in temporary tables of the transaction
 * (dropped at its end), and counts what would change. Changes nothing in the Postbox schema.
 */
export async function planRemap(tx: Executor): Promise<RemapPlan> {
  const { rows } = await tx.query<{ restored_up_to: string | null; next_transaction_id: string }>(classifySql);
  const restoredUpTo = rows[0]?.restored_up_to ?? null;
  await tx.exec(remapTablesSql);
  await tx.query(rankRowsSql, [restoredUpTo]);
  await tx.query(mapValuesSql);
  await tx.query(newSnapshotsSql);
  await tx.query(deadLetterIdsSql, [restoredUpTo]);
  await tx.query(parkedIdsSql, [restoredUpTo]);
  const { rows: counted } = await tx.query<CountsRow>(countsSql);
  const counts = counted[0] as CountsRow;
  return {
    nextTransactionId: BigInt(rows[0]?.next_transaction_id ?? 0),
    restoredRows: Number(counts.restored_rows),
    rowsWrittenHere: Number(counts.rows_written_here),
    restoredTransactions: counts.restored_transactions,
    transactionsWrittenHere: counts.transactions_written_here,
    restoredUpTo: restoredUpTo === null ? null : BigInt(restoredUpTo),
    checkpoints: counts.checkpoints,
    startSnapshots: counts.start_snapshots,
    deadLetters: counts.dead_letters,
    parkedMessages: counts.parked_messages,
    lowestNewId: counts.lowest === null ? null : BigInt(counts.lowest),
    highestNewId: counts.highest === null ? null : BigInt(counts.highest),
  };
}

/** Writes the new ids planned by planRemap in the same transaction. Global positions do not change. */
export async function applyRemap(tx: Executor, plan: RemapPlan): Promise<void> {
  await tx.query(
    `update postbox.messages m set transaction_id = r.new_id
     from postbox_remap_rows r
     where r.old_id = m.transaction_id and r.written_here = (m.global_position > coalesce($1::bigint, 0)) and r.new_id <> r.old_id`,
    [plan.restoredUpTo === null ? null : String(plan.restoredUpTo)],
  );
  await tx.query(
    `update postbox.group_partitions p set checkpoint_transaction_id = v.new_id
     from postbox_remap_values v where v.old_id = p.checkpoint_transaction_id and v.new_id <> v.old_id`,
  );
  await tx.query(
    `update postbox.consumer_groups g set start_snapshot = s.new_snapshot
     from postbox_remap_snapshots s where s.group_name = g.group_name and s.new_snapshot::text <> s.old_snapshot::text`,
  );
  await tx.query(
    `update postbox.dead_letters d set source_position = n.new_position
     from postbox_remap_dead_letters n where n.id = d.id and n.new_position <> d.source_position`,
  );
  await tx.query(
    `update postbox.parked_messages p set transaction_id = n.new_id
     from postbox_remap_parked n where n.id = p.id and n.new_id <> p.transaction_id`,
  );
}

/**
 * Columns of a transaction-id type (xid8, xid, pg_snapshot, txid_snapshot) in the database's own
 * tables that the remap does not change: an application's, or (a mistake) one of a newer migration.
 */
export async function unmappedTransactionIdColumns(db: Executor): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `select format('%s.%s.%s', n.nspname, c.relname, a.attname) as name
     from pg_attribute a
     join pg_class c on c.oid = a.attrelid
     join pg_namespace n on n.oid = c.relnamespace
     where a.attnum > 0 and not a.attisdropped and c.relkind in ('r', 'p') and not c.relispartition
       and a.atttypid in ('xid8'::regtype, 'xid'::regtype, 'pg_snapshot'::regtype, 'txid_snapshot'::regtype)
       and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^(pg_temp|pg_toast|_timescaledb)'
     order by 1`,
  );
  return rows.map((row) => row.name).filter((name) => !remappedColumns.includes(name));
}
