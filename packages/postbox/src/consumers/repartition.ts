import { PostboxError } from '../errors/postbox-error.js';
import type { Database } from '../sql/database.js';
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
    const { rows } = await tx.query<{ partitions: number; busy: boolean }>(
      `select g.partitions,
              exists (select from postbox.group_partitions p where p.group_name = g.group_name and p.lease_expires_at > now())
              or exists (select from postbox.group_members m where m.group_name = g.group_name and m.expires_at > now()) as busy
       from postbox.consumer_groups g where g.group_name = $1 for update`,
      [group],
    );
    const row = rows[0];
    if (!row) throw new PostboxError('POSTBOX_ERR_GROUP_NOT_FOUND', `No consumer group is named ${JSON.stringify(group)}.`, { group });
    if (row.busy) {
      throw new PostboxError(
        'POSTBOX_ERR_GROUP_BUSY',
        `Group ${group} is running in some process: stop every process of the group, wait for their leases to end, and repartition again.`,
        { group },
      );
    }
    const from = Number(row.partitions);
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
