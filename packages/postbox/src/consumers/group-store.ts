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
}

/** What a reader needs once it holds the lease. */
export interface LeasedGroup {
  checkpoint: LogPosition;
  skipVisibleIn: string | null;
}

interface LeaseRow {
  checkpoint_transaction_id: string;
  checkpoint_position: string | number;
  start_snapshot: string | null;
}

function checkGroupName(name: unknown): string {
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
  return { ...definition, topics: [...new Set(definition.topics)].sort() };
}

/**
 * Creates the group if it is new. A `latest` group starts at the visibility watermark and records
 * the current snapshot: transactions committed before creation are skipped, while those still in
 * flight (even with a lower transaction id) are delivered when they commit.
 */
export async function ensureGroup(db: Executor, definition: GroupDefinition): Promise<void> {
  const group = checkGroupDefinition(definition);
  const latest = group.startFrom === 'latest';
  await db.query(
    `insert into postbox.consumer_groups (group_name, topics, ephemeral, checkpoint_transaction_id, checkpoint_position, start_snapshot)
     select $1, $2::text[], $3,
            case when $4 then pg_snapshot_xmin(pg_current_snapshot()) else '0'::xid8 end, 0,
            case when $4 then pg_current_snapshot() end
     on conflict (group_name) do nothing`,
    [group.name, group.topics, group.ephemeral, latest],
  );
  const { rows } = await db.query<{ topics: string[] }>('select topics from postbox.consumer_groups where group_name = $1', [group.name]);
  const stored = [...(rows[0]?.topics ?? [])].sort();
  if (stored.join('\u0000') !== group.topics.join('\u0000')) {
    throw new PostboxError(
      'POSTBOX_ERR_GROUP_TOPICS_MISMATCH',
      `Group ${group.name} already reads ${JSON.stringify(stored)}, not ${JSON.stringify(group.topics)}. Use another group name, or delete the group with \`postbox groups delete ${group.name}\` to start it over.`,
      { group: group.name },
    );
  }
}

/** Takes or renews the lease if it is free, expired or already ours; undefined when another process holds it. */
export async function acquireLease(db: Executor, group: string, owner: string, ttlMs: number): Promise<LeasedGroup | undefined> {
  const { rows } = await db.query<LeaseRow>(
    `update postbox.consumer_groups
     set lease_owner = $2, lease_expires_at = now() + $3 * interval '1 millisecond', last_seen_at = now()
     where group_name = $1 and status = 'active'
       and (lease_owner is null or lease_owner = $2 or lease_expires_at < now())
     returning checkpoint_transaction_id::text as checkpoint_transaction_id, checkpoint_position, start_snapshot::text as start_snapshot`,
    [group, owner, ttlMs],
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    checkpoint: { transactionId: BigInt(row.checkpoint_transaction_id), globalPosition: BigInt(row.checkpoint_position) },
    skipVisibleIn: row.start_snapshot,
  };
}

/** Extends our lease; false when another process has taken the group. */
export async function renewLease(db: Executor, group: string, owner: string, ttlMs: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `update postbox.consumer_groups
     set lease_expires_at = now() + $3 * interval '1 millisecond', last_seen_at = now()
     where group_name = $1 and lease_owner = $2 and status = 'active'`,
    [group, owner, ttlMs],
  );
  return rowCount > 0;
}

/**
 * Hands the lease back and names the group on the lease channel, so that a standby takes it at
 * once instead of at its next check.
 */
export async function releaseLease(db: Executor, group: string, owner: string): Promise<void> {
  await db.query(
    `with released as (
       update postbox.consumer_groups set lease_owner = null, lease_expires_at = null, last_seen_at = now()
       where group_name = $1 and lease_owner = $2
       returning group_name
     )
     select pg_notify($3, group_name) from released`,
    [group, owner, defaults.leaseChannel],
  );
}

const commitSql = `
update postbox.consumer_groups
set checkpoint_transaction_id = $3::xid8,
    checkpoint_position = $4::bigint,
    start_snapshot = case when start_snapshot is not null and $3::xid8 >= pg_snapshot_xmax(start_snapshot) then null else start_snapshot end,
    lease_expires_at = now() + $5 * interval '1 millisecond',
    last_seen_at = now(),
    updated_at = now(),
    last_error = null
where group_name = $1 and lease_owner = $2 and status = 'active'`;

/**
 * Stores the checkpoint, fenced by the lease: when another process owns the group the update
 * matches no row, and a transactional batch is rolled back rather than committed twice.
 */
export async function commitCheckpoint(db: Executor, group: string, owner: string, position: LogPosition, ttlMs: number): Promise<boolean> {
  const { rowCount } = await db.query(commitSql, [group, owner, String(position.transactionId), String(position.globalPosition), ttlMs]);
  return rowCount > 0;
}

export async function recordGroupError(db: Executor, group: string, message: string): Promise<void> {
  await db.query(`update postbox.consumer_groups set last_error = $2, last_error_at = now(), updated_at = now() where group_name = $1`, [
    group,
    message.slice(0, 2_000),
  ]);
}
