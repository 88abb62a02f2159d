import type { Postbox } from 'postbox';
import { topic } from './messages.js';
import type { Session } from './session.js';
import { sleep, timed } from './timing.js';

const rawReadSql = `
select m.global_position, m.transaction_id::text as transaction_id, m.topic, m.message_id, m.type, m.key,
       m.payload, m.headers, m.stream_id, m.stream_position, m.created_at
from postbox.messages m
where m.topic = $1
  and (m.transaction_id, m.global_position) > ($2::xid8, $3::bigint)
  and m.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
order by m.transaction_id, m.global_position
limit $4`;

const rawCheckpointSql = `
update postbox.group_partitions set checkpoint_transaction_id = $2::xid8, checkpoint_position = $3::bigint, updated_at = now()
where group_name = $1 and partition = 0`;

/**
 * The raw limit: the same ordered read below the watermark, JSON parsed by the driver, one checkpoint
 * UPDATE a batch. Like postbox.read_after it turns off the plans that sort the whole topic.
 */
export async function readRaw(session: Session, group: string, total: number, batchSize: number): Promise<number> {
  await session.query('set enable_seqscan = off');
  await session.query('set enable_bitmapscan = off');
  await session.query(
    `with g as (insert into postbox.consumer_groups (group_name, topics) values ($1, $2) returning group_name)
     insert into postbox.group_partitions (group_name, partition) select group_name, 0 from g`,
    [group, [topic]],
  );
  const { ms } = await timed(async () => {
    let transactionId = '0';
    let position = '0';
    for (let read = 0; read < total; ) {
      const rows = await session.prepared('raw_read', rawReadSql, [topic, transactionId, position, batchSize]);
      const last = rows.at(-1);
      if (!last) continue;
      transactionId = last.transaction_id;
      position = String(last.global_position);
      await session.prepared('raw_checkpoint', rawCheckpointSql, [group, transactionId, position]);
      read += rows.length;
    }
  });
  return ms;
}

/** A Postbox consumer group with a no-op batch handler, from start() until every message is checkpointed. */
export async function readPostbox(postbox: Postbox, group: string, total: number, batchSize: number): Promise<number> {
  const consumer = postbox.consumer({ group, topics: [topic], batchSize, handleBatch: async () => {} });
  const { ms } = await timed(async () => {
    await consumer.start();
    while (consumer.handled < total) await sleep(1);
  });
  await consumer.stop();
  return ms;
}
