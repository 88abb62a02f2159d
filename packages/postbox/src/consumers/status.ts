import type { LogPosition } from '../log/position.js';
import { type TopicStatus, topicTotals } from '../log/topics.js';
import { holdersWorthShowing, type WatermarkHolder, watermarkDelayOf, watermarkHolders } from '../log/watermark.js';
import type { Executor } from '../sql/database.js';

export type { TopicStatus } from '../log/topics.js';

/** One partition of a group: who reads it, where it is, how far behind. */
export interface PartitionStatus {
  partition: number;
  /** The member whose lease is live; null when nobody holds the partition. */
  owner: string | null;
  /** The holder of a lease that ran out, until someone else takes the partition. */
  expiredOwner: string | null;
  checkpoint: LogPosition;
  lagMessages: number;
  lagSeconds: number;
  /** How long the partition has had no owner; 0 while it has one. */
  unownedSeconds: number;
  lastError: string | null;
}

/** A process running the group. */
export interface MemberStatus {
  member: string;
  /** Its heartbeat is recent: it counts when the partitions are spread. */
  live: boolean;
  joinedAt: Date;
  expiresAt: Date;
  /** The partitions it holds now. */
  partitions: number[];
}

export interface GroupStatus {
  group: string;
  topics: string[];
  ephemeral: boolean;
  status: string;
  partitions: PartitionStatus[];
  members: MemberStatus[];
  /** Over all partitions: the messages not yet handled, and the age of the oldest. */
  lagMessages: number;
  lagSeconds: number;
  /** The latest error of any partition that has not committed a batch since. */
  lastError: string | null;
  lastSeenAt: Date;
}

export interface LogStatus {
  groups: GroupStatus[];
  topics: TopicStatus[];
  /** Age of the oldest open writing transaction: readers cannot pass it until it ends. */
  watermarkDelaySeconds: number;
  /** The open writing transactions that hold readers back, as holdersWorthShowing picks them. */
  watermarkHolders: WatermarkHolder[];
}

interface StatusRow {
  group_name: string;
  topics: string[];
  ephemeral: boolean;
  status: string;
  last_seen_at: Date | string;
  partitions: {
    partition: number;
    owner: string | null;
    expired_owner: string | null;
    checkpoint_transaction_id: string;
    checkpoint_position: string | number;
    lag_messages: number;
    lag_seconds: number;
    unowned_seconds: number;
    last_error: string | null;
    last_error_at: string | null;
  }[];
  members: { member: string; live: boolean; joined_at: string; expires_at: string }[] | null;
}

export async function groupStatuses(db: Executor, groupName?: string): Promise<GroupStatus[]> {
  const { rows } = await db.query<StatusRow>(
    `select g.group_name, g.topics, g.ephemeral, g.status, g.last_seen_at,
            (select json_agg(json_build_object(
                'partition', p.partition,
                'owner', case when p.lease_expires_at > now() then p.lease_owner end,
                'expired_owner', case when p.lease_expires_at <= now() then p.lease_owner end,
                'checkpoint_transaction_id', p.checkpoint_transaction_id::text,
                'checkpoint_position', p.checkpoint_position,
                'lag_messages', lag.messages,
                'lag_seconds', coalesce(extract(epoch from now() - lag.oldest), 0),
                'unowned_seconds', case when p.lease_expires_at > now() then 0
                                        else extract(epoch from now() - greatest(p.released_at, p.lease_expires_at)) end,
                'last_error', p.last_error,
                'last_error_at', p.last_error_at) order by p.partition)
             from postbox.group_partitions p
             cross join lateral postbox.backlog(g.topics, p.checkpoint_transaction_id, p.checkpoint_position, g.start_snapshot,
                                                p.partition, g.partitions) lag
             where p.group_name = g.group_name) as partitions,
            (select json_agg(json_build_object('member', m.member, 'live', m.expires_at > now(),
                                               'joined_at', m.joined_at, 'expires_at', m.expires_at) order by m.member)
             from postbox.group_members m where m.group_name = g.group_name) as members
     from postbox.consumer_groups g
     where $1::text is null or g.group_name = $1
     order by g.group_name`,
    [groupName ?? null],
  );
  return rows.map(toGroupStatus);
}

function toGroupStatus(row: StatusRow): GroupStatus {
  const partitions: PartitionStatus[] = (row.partitions ?? []).map((p) => ({
    partition: Number(p.partition),
    owner: p.owner,
    expiredOwner: p.expired_owner,
    checkpoint: { transactionId: BigInt(p.checkpoint_transaction_id), globalPosition: BigInt(p.checkpoint_position) },
    lagMessages: Number(p.lag_messages),
    lagSeconds: Number(p.lag_seconds),
    unownedSeconds: Number(p.unowned_seconds),
    lastError: p.last_error,
  }));
  const latestError = (row.partitions ?? [])
    .filter((p) => p.last_error !== null)
    .sort((a, b) => String(b.last_error_at).localeCompare(String(a.last_error_at)))[0];
  return {
    group: row.group_name,
    topics: row.topics,
    ephemeral: row.ephemeral,
    status: row.status,
    partitions,
    members: (row.members ?? []).map((m) => ({
      member: m.member,
      live: m.live,
      joinedAt: new Date(m.joined_at),
      expiresAt: new Date(m.expires_at),
      partitions: partitions.filter((p) => p.owner === m.member).map((p) => p.partition),
    })),
    lagMessages: partitions.reduce((sum, p) => sum + p.lagMessages, 0),
    lagSeconds: partitions.reduce((max, p) => Math.max(max, p.lagSeconds), 0),
    lastError: latestError?.last_error ?? null,
    lastSeenAt: new Date(row.last_seen_at),
  };
}

/**
 * The partitions of a group that some process runs, left without an owner for longer than graceMs
 * (a lease time, say): their messages wait for nobody. A group no process runs has none here.
 */
export function strandedPartitions(group: GroupStatus, graceMs: number): PartitionStatus[] {
  const running = group.members.some((member) => member.live);
  return running ? group.partitions.filter((p) => p.owner === null && p.unownedSeconds * 1_000 > graceMs) : [];
}

export async function logStatus(db: Executor): Promise<LogStatus> {
  const groups = await groupStatuses(db);
  const topics = await topicTotals(db);
  const holders = await watermarkHolders(db);
  return {
    groups,
    topics,
    watermarkDelaySeconds: watermarkDelayOf(holders),
    watermarkHolders: holdersWorthShowing(holders),
  };
}

export async function deleteGroup(db: Executor, groupName: string): Promise<boolean> {
  const { rowCount } = await db.query('delete from postbox.consumer_groups where group_name = $1', [groupName]);
  return rowCount > 0;
}
