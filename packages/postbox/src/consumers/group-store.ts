import { defaults } from '../config/defaults.js';
import { PostboxError, ValidationError } from '../errors/postbox-error.js';
import type { LogPosition } from '../log/position.js';
import type { Executor } from '../sql/database.js';

export type StartFrom = 'earliest' | 'latest';

export interface GroupDefinition {
  name: string;
  topics: readonly string[];
  startFrom: StartFrom;
  ephemeral: boolean;
  /** How many partitions split the group's messages by key; 1 keeps the group on one process at a time. */
  partitions: number;
}

/** A partition whose lease this member holds, and where its reading goes on from. */
export interface LeasedPartition {
  partition: number;
  checkpoint: LogPosition;
  skipVisibleIn: string | null;
}

/** A member of a group as the members see each other: live while its heartbeat is recent. */
export interface GroupView {
  /** Live members, by name. */
  members: string[];
  /** The owner of each partition whose lease is live. */
  owners: Map<number, string>;
  /** Partitions this member holds (their leases renewed by the same call). */
  held: number[];
}

interface PartitionRow {
  partition: number;
  checkpoint_transaction_id: string;
  checkpoint_position: string | number;
  start_snapshot: string | null;
}

export function checkGroupName(name: unknown): string {
  if (
    typeof name !== 'string' ||
    name.trim() === '' ||
    name.length > defaults.maxNameLength ||
    name.includes('\u0000') ||
    !name.isWellFormed()
  ) {
    throw new ValidationError(
      'POSTBOX_ERR_BAD_NAME',
      `A group name must be 1 to ${defaults.maxNameLength} characters of valid text (got ${JSON.stringify(String(name).slice(0, 60))}).`,
      { field: 'group' },
    );
  }
  return name;
}

export function checkPartitions(partitions: unknown, group: string): number {
  if (!Number.isSafeInteger(partitions) || (partitions as number) < 1 || (partitions as number) > defaults.partitionBuckets) {
    throw new ValidationError(
      'POSTBOX_ERR_BAD_OPTION',
      `Group ${group}: partitions must be a whole number from 1 to ${defaults.partitionBuckets} (got ${String(partitions)}).`,
      { option: 'partitions' },
    );
  }
  return partitions as number;
}

export function checkGroupDefinition(definition: GroupDefinition): GroupDefinition {
  checkGroupName(definition.name);
  if (!Array.isArray(definition.topics) || definition.topics.length === 0) {
    throw new ValidationError('POSTBOX_ERR_EMPTY_TOPIC', `Group ${definition.name} must read at least one topic.`, { field: 'topics' });
  }
  for (const topic of definition.topics) {
    if (typeof topic !== 'string' || topic === '' || topic.includes('\u0000') || !topic.isWellFormed()) {
      throw new ValidationError('POSTBOX_ERR_EMPTY_TOPIC', `Group ${definition.name} has an empty or invalid topic.`, { field: 'topics' });
    }
  }
  if (definition.startFrom !== 'earliest' && definition.startFrom !== 'latest') {
    throw new ValidationError(
      'POSTBOX_ERR_BAD_OPTION',
      `startFrom must be 'earliest' or 'latest' (got ${JSON.stringify(definition.startFrom)}).`,
    );
  }
  checkPartitions(definition.partitions, definition.name);
  return { ...definition, topics: [...new Set(definition.topics)].sort() };
}

/**
 * Creates the group and its partitions if it is new. A `latest` group starts at the visibility
 * watermark and records the current snapshot: transactions committed before creation are skipped,
 * while those still in flight (even with a lower transaction id) are delivered when they commit.
 * An existing group must read the same topics with the same number of partitions.
 */
export async function ensureGroup(db: Executor, definition: GroupDefinition): Promise<void> {
  const group = checkGroupDefinition(definition);
  const latest = group.startFrom === 'latest';
  const { rows } = await db.query<{ topics: string[]; partitions: number }>(
    `with created as (
       insert into postbox.consumer_groups (group_name, topics, ephemeral, partitions, start_snapshot)
       select $1, $2::text[], $3, $5, case when $4 then pg_current_snapshot() end
       on conflict (group_name) do nothing
       returning group_name, topics, partitions
     ),
     partitions as (
       insert into postbox.group_partitions (group_name, partition, checkpoint_transaction_id)
       select c.group_name, p, case when $4 then pg_snapshot_xmin(pg_current_snapshot()) else '0'::xid8 end
       from created c cross join generate_series(0, c.partitions - 1) as p
     )
     select topics, partitions from created
     union all
     select topics, partitions from postbox.consumer_groups where group_name = $1 and not exists (select from created)`,
    [group.name, group.topics, group.ephemeral, latest, group.partitions],
  );
  // A process that created the same group at the same moment committed after this statement's
  // snapshot: the insert did nothing and the select saw nothing, so look again in a new snapshot.
  const stored =
    rows[0] ??
    (
      await db.query<{ topics: string[]; partitions: number }>(
        'select topics, partitions from postbox.consumer_groups where group_name = $1',
        [group.name],
      )
    ).rows[0];
  const storedTopics = [...(stored?.topics ?? [])].sort();
  if (storedTopics.join('\u0000') !== group.topics.join('\u0000')) {
    throw new PostboxError(
      'POSTBOX_ERR_GROUP_TOPICS_MISMATCH',
      `Group ${group.name} already reads ${JSON.stringify(storedTopics)}, not ${JSON.stringify(group.topics)}. Use another group name, or delete the group with \`postbox groups delete ${group.name}\` to start it over.`,
      { group: group.name },
    );
  }
  if (stored && Number(stored.partitions) !== group.partitions) {
    throw new PostboxError(
      'POSTBOX_ERR_GROUP_PARTITIONS_MISMATCH',
      `Group ${group.name} has ${stored.partitions} partition${Number(stored.partitions) === 1 ? '' : 's'}, not ${group.partitions}. A group keeps its partition count: stop every process of the group and run \`postbox groups repartition ${group.name} --partitions ${group.partitions}\` (messages between its partitions' checkpoints are delivered again), or give the new count to a new group.`,
      { group: group.name, partitions: Number(stored.partitions), requested: group.partitions },
    );
  }
}

/**
 * One heartbeat of a member: records it as live for ttlMs, renews the leases of the partitions it
 * holds, forgets members long dead, and returns how the group looks now.
 */
export async function heartbeat(db: Executor, group: string, member: string, ttlMs: number): Promise<GroupView> {
  const { rows } = await db.query<{
    members: string[] | null;
    owners: { partition: number; owner: string }[] | null;
    held: number[] | null;
  }>(
    `with beat as (
       insert into postbox.group_members as m (group_name, member, expires_at)
       values ($1, $2, now() + $3 * interval '1 millisecond')
       on conflict (group_name, member) do update set expires_at = excluded.expires_at
       returning member, xmax = 0 as joined
     ),
     renewed as (
       update postbox.group_partitions
       set lease_expires_at = now() + $3 * interval '1 millisecond'
       where group_name = $1 and lease_owner = $2
       returning partition
     ),
     forgotten as (
       delete from postbox.group_members
       where group_name = $1 and expires_at < now() - $4 * $3 * interval '1 millisecond'
     ),
     seen as (
       update postbox.consumer_groups set last_seen_at = now() where group_name = $1
     ),
     joined as (
       -- A new member tells the others, so that they hand over its share at once.
       select pg_notify($5, $1) from beat b where b.joined
     )
     select
       (select count(*) from joined) as joined,
       (select array_agg(m.member order by m.member) from postbox.group_members m
        where m.group_name = $1 and (m.expires_at > now() or m.member = $2)) as members,
       (select json_agg(json_build_object('partition', p.partition, 'owner', p.lease_owner))
        from postbox.group_partitions p
        where p.group_name = $1 and p.lease_expires_at > now() and p.lease_owner <> $2) as owners,
       (select array_agg(r.partition order by r.partition) from renewed r) as held`,
    [group, member, ttlMs, defaults.consumer.forgetMembersAfterLeases, defaults.leaseChannel],
  );
  const row = rows[0];
  const owners = new Map<number, string>();
  for (const entry of row?.owners ?? []) owners.set(Number(entry.partition), entry.owner);
  const held = (row?.held ?? []).map(Number);
  for (const partition of held) owners.set(partition, member);
  return { members: row?.members ?? [member], owners, held };
}

/**
 * Takes the leases of up to `count` of the given partitions that no live lease holds, in the order
 * given; returns the ones taken, with where each goes on from.
 */
export async function acquirePartitions(
  db: Executor,
  group: string,
  member: string,
  ttlMs: number,
  candidates: readonly number[],
  count: number,
): Promise<LeasedPartition[]> {
  if (count <= 0 || candidates.length === 0) return [];
  const { rows } = await db.query<PartitionRow>(
    `with wanted as (
       select p.partition from postbox.group_partitions p
       join postbox.consumer_groups g on g.group_name = p.group_name
       where p.group_name = $1 and g.status = 'active' and p.partition = any($4::integer[])
         and (p.lease_owner is null or p.lease_owner = $2 or p.lease_expires_at < now())
       order by array_position($4::integer[], p.partition)
       limit $5
       for update of p skip locked
     )
     update postbox.group_partitions p
     set lease_owner = $2, lease_expires_at = now() + $3 * interval '1 millisecond', updated_at = now()
     from wanted w, postbox.consumer_groups g
     where p.group_name = $1 and p.partition = w.partition and g.group_name = p.group_name
     returning p.partition, p.checkpoint_transaction_id::text as checkpoint_transaction_id, p.checkpoint_position,
               g.start_snapshot::text as start_snapshot`,
    [group, member, ttlMs, [...candidates], count],
  );
  return rows
    .map((row) => ({
      partition: Number(row.partition),
      checkpoint: { transactionId: BigInt(row.checkpoint_transaction_id), globalPosition: BigInt(row.checkpoint_position) },
      skipVisibleIn: row.start_snapshot,
    }))
    .sort((a, b) => a.partition - b.partition);
}

/**
 * Hands a partition's lease back and names the group on the lease channel, so that the member
 * meant to have it takes it at once instead of at its next heartbeat.
 */
export async function releasePartition(db: Executor, group: string, member: string, partition: number): Promise<void> {
  await db.query(
    `with released as (
       update postbox.group_partitions
       set lease_owner = null, lease_expires_at = null, released_at = now(), updated_at = now()
       where group_name = $1 and partition = $3 and lease_owner = $2
       returning group_name
     )
     select pg_notify($4, group_name) from released`,
    [group, member, partition, defaults.leaseChannel],
  );
}

/** Removes the member from the group, and tells the others so that they spread its partitions at once. */
export async function leaveGroup(db: Executor, group: string, member: string): Promise<void> {
  await db.query(
    `with left_group as (delete from postbox.group_members where group_name = $1 and member = $2 returning group_name)
     select pg_notify($3, group_name) from left_group`,
    [group, member, defaults.leaseChannel],
  );
}

const commitSql = `
update postbox.group_partitions
set checkpoint_transaction_id = $4::xid8,
    checkpoint_position = $5::bigint,
    lease_expires_at = now() + $6 * interval '1 millisecond',
    updated_at = now(),
    last_error = null
where group_name = $1 and partition = $2 and lease_owner = $3`;

/**
 * Stores a partition's checkpoint, fenced by its lease: when another member owns the partition the
 * update matches no row, and a transactional batch is rolled back rather than committed twice.
 */
export async function commitCheckpoint(
  db: Executor,
  group: string,
  partition: number,
  owner: string,
  position: LogPosition,
  ttlMs: number,
): Promise<boolean> {
  const { rowCount } = await db.query(commitSql, [
    group,
    partition,
    owner,
    String(position.transactionId),
    String(position.globalPosition),
    ttlMs,
  ]);
  return rowCount > 0;
}

/** Records why a batch of a partition failed; the partition's next committed batch clears it. */
export async function recordPartitionError(db: Executor, group: string, partition: number, message: string): Promise<void> {
  await db.query(
    `update postbox.group_partitions set last_error = $3, last_error_at = now(), updated_at = now() where group_name = $1 and partition = $2`,
    [group, partition, message.slice(0, 2_000)],
  );
}
