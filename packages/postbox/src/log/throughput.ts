import type { Executor } from '../sql/database.js';
import { comparePositions, type LogPosition } from './position.js';

/** The watermark now, and the messages that became readable since an earlier one. */
export interface Readable {
  /** The watermark readers stop at now (pg_snapshot_xmin), to pass as `since` next time. */
  watermark: bigint;
  /** Committed messages whose transaction ids lie from `since` (included) up to the watermark: 0 without `since`. */
  messages: number;
}

const watermarkSql = 'select pg_snapshot_xmin(pg_current_snapshot())::text as watermark';

// Every id below the watermark belongs to a finished transaction, so the messages between two
// watermarks are exactly those that became readable in between, each counted once. The topics
// come from a loose scan of the reader index (one probe per topic), and each is counted on its own
// index range.
const readableSql = `
with recursive w as (select pg_snapshot_xmin(pg_current_snapshot()) as now),
topics as (
  (select m.topic from postbox.messages m order by m.topic limit 1)
  union all
  select (select m.topic from postbox.messages m where m.topic > t.topic order by m.topic limit 1)
  from topics t where t.topic is not null
)
select w.now::text as watermark,
       (select coalesce(sum(c.n), 0) from topics t
        cross join lateral (
          select count(*) as n from postbox.messages m
          where m.topic = t.topic and m.transaction_id >= $1::xid8 and m.transaction_id < w.now
        ) c
        where t.topic is not null)::bigint as messages
from w`;

/**
 * The watermark now and, given the watermark of an earlier call, how many messages became readable
 * since: the log's committed appends, as its readers see them. A transaction that holds the
 * watermark holds its messages (and every later one) back until it ends.
 */
export async function readableSince(db: Executor, since: bigint | null): Promise<Readable> {
  if (since === null) {
    const { rows } = await db.query<{ watermark: string }>(watermarkSql);
    return { watermark: BigInt(rows[0]?.watermark ?? '0'), messages: 0 };
  }
  const { rows } = await db.query<{ watermark: string; messages: string | number }>(readableSql, [String(since)]);
  return { watermark: BigInt(rows[0]?.watermark ?? String(since)), messages: Number(rows[0]?.messages ?? 0) };
}

/** One reader's move through the log: a group's partitions, each from one checkpoint to a later one. */
export interface ReaderProgress {
  /** Returned as the key of the count. */
  key: string;
  topics: readonly string[];
  /** The group's number of partitions. */
  partitions: number;
  moves: readonly { partition: number; from: LogPosition; to: LogPosition }[];
}

const passedSql = `
with r as (
  select * from unnest($1::integer[], $2::integer[], $3::integer[], $4::xid8[], $5::bigint[], $6::xid8[], $7::bigint[])
    as r(item, partition, partitions, from_transaction_id, from_position, to_transaction_id, to_position)
),
t as (select * from unnest($8::integer[], $9::text[]) as t(item, topic))
select r.item, sum(c.n)::bigint as messages
from r
join t on t.item = r.item
cross join lateral (
  select count(*) as n from postbox.messages m
  where m.topic = t.topic
    and (m.transaction_id, m.global_position) > (r.from_transaction_id, r.from_position)
    and (m.transaction_id, m.global_position) <= (r.to_transaction_id, r.to_position)
    and (r.partitions = 1 or postbox.partition_of(m.bucket, r.partitions) = r.partition)
) c
group by r.item`;

/**
 * How many messages each reader moved past: per partition, those of its topics after the old
 * checkpoint and up to the new one, on the reader index. A partition that did not move forward
 * (or moved back, by a reset) counts 0. One statement for all readers.
 */
export async function messagesPassed(db: Executor, readers: readonly ReaderProgress[]): Promise<Map<string, number>> {
  const counts = new Map(readers.map((reader) => [reader.key, 0]));
  const moves = { item: [] as number[], partition: [] as number[], partitions: [] as number[] };
  const bounds = { fromTx: [] as string[], fromPos: [] as string[], toTx: [] as string[], toPos: [] as string[] };
  const topics = { item: [] as number[], topic: [] as string[] };
  readers.forEach((reader, item) => {
    const forward = reader.moves.filter((move) => comparePositions(move.to, move.from) > 0);
    if (forward.length === 0 || reader.topics.length === 0) return;
    for (const move of forward) {
      moves.item.push(item);
      moves.partition.push(move.partition);
      moves.partitions.push(reader.partitions);
      bounds.fromTx.push(String(move.from.transactionId));
      bounds.fromPos.push(String(move.from.globalPosition));
      bounds.toTx.push(String(move.to.transactionId));
      bounds.toPos.push(String(move.to.globalPosition));
    }
    for (const topic of reader.topics) {
      topics.item.push(item);
      topics.topic.push(topic);
    }
  });
  if (moves.item.length === 0) return counts;
  const { rows } = await db.query<{ item: number; messages: string | number }>(passedSql, [
    moves.item,
    moves.partition,
    moves.partitions,
    bounds.fromTx,
    bounds.fromPos,
    bounds.toTx,
    bounds.toPos,
    topics.item,
    topics.topic,
  ]);
  for (const row of rows) {
    const reader = readers[Number(row.item)];
    if (reader) counts.set(reader.key, Number(row.messages));
  }
  return counts;
}
