import type { Executor } from 'postbox';

/** Who holds each partition of a group now (a live lease), or null; index = partition. */
export async function partitionOwners(db: Executor, group: string): Promise<(string | null)[]> {
  const { rows } = await db.query<{ partition: number; owner: string | null }>(
    `select partition, case when lease_expires_at > now() then lease_owner end as owner
     from postbox.group_partitions where group_name = $1 order by partition`,
    [group],
  );
  const owners: (string | null)[] = [];
  for (const row of rows) owners[Number(row.partition)] = row.owner;
  return owners;
}

/** When a member first heartbeated into the group (server clock), once it has. */
export async function memberJoinedAt(db: Executor, group: string, member: string): Promise<Date | undefined> {
  const { rows } = await db.query<{ joined_at: Date }>(
    'select joined_at from postbox.group_members where group_name = $1 and member = $2',
    [group, member],
  );
  return rows[0]?.joined_at;
}

/** A committed batch's span on the server clock. */
export interface BatchSpan {
  startedAt: Date;
  endedAt: Date;
}

/**
 * For each given partition, the first batch committed after `since` by a member other than its
 * former owner (server clock); partitions with none yet are absent.
 */
export async function firstBatchesAfter(
  db: Executor,
  moved: ReadonlyMap<number, string | null>,
  since: Date,
): Promise<Map<number, BatchSpan>> {
  const { rows } = await db.query<{ partition: number; started_at: Date; ended_at: Date }>(
    `select distinct on (w.partition) w.partition, b.transaction_started_at as started_at, b.ended_at
     from unnest($1::int[], $2::text[]) as w(partition, former)
     join chaos_batches b on b.partition = w.partition and b.member is distinct from w.former and b.ended_at > $3
     order by w.partition, b.ended_at`,
    [[...moved.keys()], [...moved.values()], since],
  );
  return new Map(rows.map((row) => [Number(row.partition), { startedAt: row.started_at, endedAt: row.ended_at }]));
}

export interface BatchOverlaps {
  /** Committed batches that began before an earlier batch of their partition had ended. */
  count: number;
  examples: string[];
}

/**
 * Committed batches of one partition whose spans (transaction start to last write) overlap: two
 * members (or two readers of one) handled the partition at once. Sorted by start, a batch overlaps
 * an earlier one exactly when it starts before the latest end among those before it.
 */
export async function overlappingBatches(db: Executor): Promise<BatchOverlaps> {
  const { rows } = await db.query<{ partition: number; member: string; previous_member: string; started: string; previous_end: string }>(
    `with spans as (
       select partition, member, transaction_started_at, batch_id,
              max(ended_at) over earlier as previous_end,
              lag(member) over (partition by partition order by transaction_started_at, batch_id) as previous_member
       from chaos_batches
       window earlier as (partition by partition order by transaction_started_at, batch_id rows between unbounded preceding and 1 preceding)
     )
     select partition, member, previous_member, transaction_started_at::text as started, previous_end::text as previous_end
     from spans where transaction_started_at < previous_end
     order by transaction_started_at`,
  );
  return {
    count: rows.length,
    examples: rows
      .slice(0, 5)
      .map(
        (row) =>
          `partition ${row.partition}: a batch of ${row.member} began at ${row.started}, before a batch of it that ended at ${row.previous_end} (the one before was ${row.previous_member}'s)`,
      ),
  };
}

/** Committed batches, and how often a partition's next committed batch was another member's. */
export async function batchCounts(db: Executor): Promise<{ batches: number; messages: number; handovers: number }> {
  const { rows } = await db.query<{ batches: number; messages: number; handovers: number }>(
    `select count(*)::int as batches, coalesce(sum(messages), 0)::int as messages,
            count(*) filter (where previous is not null and previous <> member)::int as handovers
     from (select member, messages, lag(member) over (partition by partition order by transaction_started_at, batch_id) as previous
           from chaos_batches) b`,
  );
  return rows[0] ?? { batches: 0, messages: 0, handovers: 0 };
}

export interface HandledMessage {
  id: string;
  key: string;
  sequence: number;
  partition: number;
}

/** Every effect row, in the order the messages were handled: by their batch's start, then their place in it. */
export async function effectsInHandleOrder(db: Executor): Promise<HandledMessage[]> {
  const { rows } = await db.query<{ id: string; key: string; sequence: number; partition: number }>(
    `select e.message_id::text as id, e.key, e.sequence, e.partition
     from chaos_effects e join chaos_batches b using (batch_id)
     order by b.transaction_started_at, b.batch_id, e.ordinal`,
  );
  return rows.map((row) => ({ id: row.id, key: row.key, sequence: Number(row.sequence), partition: Number(row.partition) }));
}

export interface Holder {
  database: string;
  openSeconds: number;
}

/**
 * The oldest transaction in another database of the server that began before `since` and still
 * holds a transaction id: until it ends, no reader on the server sees rows committed after it
 * began (the visibility watermark is server-wide), so a partition can have nothing to read.
 */
export async function holderElsewhere(db: Executor, since: Date): Promise<Holder | undefined> {
  const { rows } = await db.query<{ datname: string; open_seconds: string }>(
    `select datname, extract(epoch from now() - xact_start)::text as open_seconds
     from pg_stat_activity
     where backend_xid is not null and datname is distinct from current_database() and xact_start < $1
     order by xact_start limit 1`,
    [since],
  );
  const row = rows[0];
  return row ? { database: row.datname, openSeconds: Number(row.open_seconds) } : undefined;
}

/**
 * The longest time within [from, to] (server clock) during which no partition outside `excluded`
 * committed a batch: when it is about as long as a slow recovery, every partition was stalled, not
 * only the ones that changed owner.
 */
export async function longestQuietSpellMs(db: Executor, excluded: readonly number[], from: Date, to: Date): Promise<number> {
  const { rows } = await db.query<{ gap_ms: string | null }>(
    `with ends as (
       select ended_at as at from chaos_batches where partition <> all($1::int[]) and ended_at > $2 and ended_at < $3
       union all select $2::timestamptz union all select $3::timestamptz
     )
     select max(extract(epoch from gap) * 1000)::text as gap_ms
     from (select at - lag(at) over (order by at) as gap from ends) spells`,
    [[...excluded], from, to],
  );
  return Number(rows[0]?.gap_ms ?? 0);
}
