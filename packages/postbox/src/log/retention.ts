import { defaults } from '../config/defaults.js';
import type { Executor } from '../sql/database.js';
import { assertTransactionIdsCurrent } from './transaction-ids.js';

export interface RetentionOptions {
  /** Delete plain messages older than this. */
  olderThanMs: number;
  /** Only these topics; all plain topics when omitted. Event-stream rows are always kept. */
  topics?: readonly string[];
  batchSize?: number;
}

/**
 * Deletes old plain messages that every consumer group reading their topic has already passed (the
 * checkpoint of the message's partition in each group),
 * so retention never takes a message a group still owes. Works in batches to keep locks short.
 */
export async function applyRetention(db: Executor, options: RetentionOptions): Promise<number> {
  const batchSize = options.batchSize ?? defaults.cleanup.batchSize;
  // After a restore, rows written here sort below the old checkpoints and would look handled.
  await assertTransactionIdsCurrent(db);
  const { rows } = await db.query<{ boundary: string | number | null }>(
    `select coalesce(
       (select min(global_position) from postbox.messages where created_at >= now() - $1 * interval '1 millisecond'),
       (select max(global_position) + 1 from postbox.messages)) as boundary`,
    [options.olderThanMs],
  );
  const boundary = rows[0]?.boundary;
  if (boundary === null || boundary === undefined) return 0;
  let deleted = 0;
  for (;;) {
    const result = await db.query(
      `delete from postbox.messages
       where global_position in (
         select m.global_position from postbox.messages m
         where m.global_position < $1::bigint
           and m.stream_id is null
           and ($2::text[] is null or m.topic = any($2::text[]))
           and not exists (
             select 1 from postbox.consumer_groups g
             join postbox.group_partitions p
               on p.group_name = g.group_name and p.partition = postbox.partition_of(m.bucket, g.partitions)
             where m.topic = any(g.topics)
               and (m.transaction_id, m.global_position) > (p.checkpoint_transaction_id, p.checkpoint_position))
         order by m.global_position
         limit $3)`,
      [String(boundary), options.topics ?? null, batchSize],
    );
    deleted += result.rowCount;
    if (result.rowCount < batchSize) return deleted;
  }
}
