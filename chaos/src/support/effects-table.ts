import type { Executor } from 'postbox';
import { tally } from './delivery-count.js';

/** The effects a transactional handler writes in its batch's transaction: one row per message handled. */
export async function createEffectsTable(db: Executor): Promise<void> {
  await db.query(
    'create table chaos_effects (message_id uuid not null, owner text not null, recorded_at timestamptz not null default clock_timestamp())',
  );
}

export async function recordEffects(tx: Executor | undefined, messageIds: readonly string[], owner: string): Promise<void> {
  await tx?.query('insert into chaos_effects (message_id, owner) select unnest($1::uuid[]), $2', [messageIds, owner]);
}

/** How many effect rows each message id has. */
export async function countEffects(db: Executor): Promise<Map<string, number>> {
  const { rows } = await db.query<{ message_id: string }>('select message_id::text as message_id from chaos_effects');
  return tally(rows.map((row) => row.message_id));
}

/**
 * The effects of a partitioned group's batches, for the rebalance scenario: chaos_effects as above,
 * each row also with its message's key and sequence number, its partition, its batch and its place
 * in that batch; and chaos_batches, one row per committed batch with its member and its span on the
 * server's clock, from the start of the batch's transaction to its last write.
 */
export async function createBatchEffectsTables(db: Executor): Promise<void> {
  await createEffectsTable(db);
  await db.query(
    'alter table chaos_effects add column batch_id bigint, add column key text, add column sequence int, add column partition int, add column ordinal int',
  );
  await db.query(
    `create table chaos_batches (
       batch_id bigserial primary key,
       partition int not null,
       member text not null,
       transaction_started_at timestamptz not null,
       handler_started_at timestamptz not null,
       ended_at timestamptz not null,
       messages int not null
     )`,
  );
  await db.query('create index on chaos_batches (partition, ended_at)');
}

export interface BatchRecord {
  partition: number;
  member: string;
  /** clock_timestamp() read in the batch's transaction when the handler began, as text. */
  handlerStartedAt: string;
  messages: readonly { id: string; key: string; sequence: number }[];
}

/** The server clock now, as text (microseconds kept), read in the batch's transaction. */
export async function batchClock(tx: Executor): Promise<string> {
  const { rows } = await tx.query<{ at: string }>('select clock_timestamp()::text as at');
  return rows[0]?.at as string;
}

/**
 * One statement, the batch's last write: its chaos_batches row (ended_at is clock_timestamp() now,
 * transaction_started_at the transaction's now()) and one effect row per message.
 */
export async function recordBatchEffects(tx: Executor, batch: BatchRecord): Promise<void> {
  await tx.query(
    `with batch as (
       insert into chaos_batches (partition, member, transaction_started_at, handler_started_at, ended_at, messages)
       values ($1, $2, now(), $3::timestamptz, clock_timestamp(), $4)
       returning batch_id
     )
     insert into chaos_effects (message_id, owner, batch_id, key, sequence, partition, ordinal)
     select m.id, $2, b.batch_id, m.key, m.sequence, $1, m.ordinal
     from batch b, unnest($5::uuid[], $6::text[], $7::int[]) with ordinality as m(id, key, sequence, ordinal)`,
    [
      batch.partition,
      batch.member,
      batch.handlerStartedAt,
      batch.messages.length,
      batch.messages.map((message) => message.id),
      batch.messages.map((message) => message.key),
      batch.messages.map((message) => message.sequence),
    ],
  );
}
