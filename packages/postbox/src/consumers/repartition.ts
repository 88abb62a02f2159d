import type { Database } from '../sql/database.js';
import { type GroupToChange, groupBusyError, isInUse, readGroupsToChange } from './group-change.js';
import { checkPartitions } from './group-store.js';

export interface RepartitionResult {
  group: string;
  from: number;
  to: number;
  /** Messages some old partition had handled that the new partitions deliver again. */
  redelivered: number;
}

/**
 * Gives a group a new number of partitions. Every new partition starts at the earliest checkpoint
 * of the old ones, so that nothing is skipped; the messages between it and the other old
 * checkpoints are delivered again (at-least-once; a transactional group's handler sees them twice).
 * Refused while any process runs the group: stop them all first.
 */
export async function repartitionGroup(db: Database, group: string, partitions: number): Promise<RepartitionResult> {
  checkPartitions(partitions, group);
  return db.transaction(async (tx) => {
    const found = (await readGroupsToChange(tx, [group], { lock: true }))[0] as GroupToChange;
    if (isInUse(found)) throw groupBusyError(found, 'repartition');
    const from = found.partitions;
    const { rows: counted } = await tx.query<{ redelivered: number }>(
      `with earliest as (
         select checkpoint_transaction_id as tx, checkpoint_position as pos from postbox.group_partitions
         where group_name = $1 order by checkpoint_transaction_id, checkpoint_position limit 1
       )
       select count(*)::int as redelivered
       from postbox.consumer_groups g, earliest e, postbox.messages m
       join postbox.group_partitions p on p.group_name = $1
       where g.group_name = $1 and m.topic = any(g.topics)
         and p.partition = postbox.partition_of(m.bucket, g.partitions)
         and (m.transaction_id, m.global_position) > (e.tx, e.pos)
         and (m.transaction_id, m.global_position) <= (p.checkpoint_transaction_id, p.checkpoint_position)`,
      [group],
    );
    const { rows: earliest } = await tx.query<{ tx: string; pos: string }>(
      `select checkpoint_transaction_id::text as tx, checkpoint_position::text as pos from postbox.group_partitions
       where group_name = $1 order by checkpoint_transaction_id, checkpoint_position limit 1`,
      [group],
    );
    await tx.query('delete from postbox.group_partitions where group_name = $1', [group]);
    await tx.query('delete from postbox.group_members where group_name = $1', [group]);
    await tx.query('update postbox.consumer_groups set partitions = $2, updated_at = now() where group_name = $1', [group, partitions]);
    await tx.query(
      `insert into postbox.group_partitions (group_name, partition, checkpoint_transaction_id, checkpoint_position)
       select $1, p, $3::xid8, $4::bigint from generate_series(0, $2 - 1) as p`,
      [group, partitions, earliest[0]?.tx ?? '0', earliest[0]?.pos ?? '0'],
    );
    return { group, from, to: partitions, redelivered: counted[0]?.redelivered ?? 0 };
  });
}
