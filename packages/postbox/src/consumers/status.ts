import { type TopicStatus, topicTotals } from '../log/topics.js';
import type { Executor } from '../sql/database.js';

export type { TopicStatus } from '../log/topics.js';

export interface GroupStatus {
  group: string;
  topics: string[];
  ephemeral: boolean;
  status: string;
  leaseOwner: string | null;
  leaseActive: boolean;
  checkpoint: { transactionId: bigint; globalPosition: bigint };
  lagMessages: number;
  lagSeconds: number;
  lastError: string | null;
  lastSeenAt: Date;
}

export interface LogStatus {
  groups: GroupStatus[];
  topics: TopicStatus[];
  /** Age of the oldest open writing transaction: readers cannot pass it until it ends. */
  watermarkDelaySeconds: number;
}

export async function groupStatuses(db: Executor, groupName?: string): Promise<GroupStatus[]> {
  const { rows } = await db.query<Record<string, unknown>>(
    `select g.group_name, g.topics, g.ephemeral, g.status, g.lease_owner,
            coalesce(g.lease_expires_at > now(), false) as lease_active,
            g.checkpoint_transaction_id::text as checkpoint_transaction_id, g.checkpoint_position,
            g.last_error, g.last_seen_at, lag.messages, coalesce(extract(epoch from now() - lag.oldest), 0)::float8 as lag_seconds
     from postbox.consumer_groups g
     cross join lateral postbox.backlog(g.topics, g.checkpoint_transaction_id, g.checkpoint_position, g.start_snapshot) lag
     where $1::text is null or g.group_name = $1
     order by g.group_name`,
    [groupName ?? null],
  );
  return rows.map((row) => ({
    group: row.group_name as string,
    topics: row.topics as string[],
    ephemeral: row.ephemeral as boolean,
    status: row.status as string,
    leaseOwner: row.lease_owner as string | null,
    leaseActive: row.lease_active as boolean,
    checkpoint: {
      transactionId: BigInt(row.checkpoint_transaction_id as string),
      globalPosition: BigInt(row.checkpoint_position as string),
    },
    lagMessages: Number(row.messages),
    lagSeconds: Number(row.lag_seconds),
    lastError: row.last_error as string | null,
    lastSeenAt: new Date(row.last_seen_at as string),
  }));
}

export async function watermarkDelaySeconds(db: Executor): Promise<number> {
  const { rows } = await db.query<{ seconds: number | string }>(
    `select coalesce(extract(epoch from max(now() - xact_start)), 0)::float8 as seconds
     from pg_stat_activity where backend_xid is not null and pid <> pg_backend_pid()`,
  );
  return Number(rows[0]?.seconds ?? 0);
}

export async function logStatus(db: Executor): Promise<LogStatus> {
  return {
    groups: await groupStatuses(db),
    topics: await topicTotals(db),
    watermarkDelaySeconds: await watermarkDelaySeconds(db),
  };
}

export async function deleteGroup(db: Executor, groupName: string): Promise<boolean> {
  const { rowCount } = await db.query('delete from postbox.consumer_groups where group_name = $1', [groupName]);
  return rowCount > 0;
}
