import { PostboxError } from '../errors/postbox-error.js';
import type { LogPosition } from '../log/position.js';
import type { ReadStart } from '../log/read-start.js';
import type { Executor } from '../sql/database.js';

/** A group as a command that changes it sees it: its topics, its partitions and where each reads from, and who runs it. */
export interface GroupToChange {
  name: string;
  topics: string[];
  partitions: number;
  /** Transactions visible in this snapshot are left out by every partition (a `latest` start); null for none. */
  startSnapshot: string | null;
  checkpoints: { partition: number; after: LogPosition }[];
  /** The processes running the group now: members with a live heartbeat and owners of live leases. */
  holders: string[];
  /**
   * True when every row of the group is locked by this transaction, so that no member can join,
   * take a lease or commit a checkpoint until it ends. False when another transaction was writing
   * one of them (a heartbeat or a batch in flight): the group is in use.
   */
  locked: boolean;
}

interface GroupRow {
  group_name: string;
  topics: string[];
  partitions: number;
  start_snapshot: string | null;
  checkpoints: { partition: number; transaction_id: string; position: string }[] | null;
  holders: string[] | null;
}

const readSql = `
select g.group_name, g.topics, g.partitions, g.start_snapshot::text as start_snapshot,
       (select json_agg(json_build_object('partition', p.partition, 'transaction_id', p.checkpoint_transaction_id::text,
                                          'position', p.checkpoint_position::text) order by p.partition)
        from postbox.group_partitions p where p.group_name = g.group_name) as checkpoints,
       array(select h.holder from (
               select p.lease_owner as holder from postbox.group_partitions p where p.group_name = g.group_name and p.lease_expires_at > now()
               union
               select m.member from postbox.group_members m where m.group_name = g.group_name and m.expires_at > now()
             ) h order by h.holder) as holders
from postbox.consumer_groups g
where g.group_name = any($1::text[])
order by g.group_name`;

/**
 * The groups, by name, for a command that changes them while nobody runs them (reset, repartition).
 * With lock, each group's rows are locked for the caller's transaction first, skipping rows another
 * transaction holds rather than waiting for them, so the command never blocks behind a member nor
 * deadlocks with one; `locked` says whether it got them all. Raises POSTBOX_ERR_GROUP_NOT_FOUND for
 * the first name that is not a group.
 */
export async function readGroupsToChange(tx: Executor, names: readonly string[], options: { lock: boolean }): Promise<GroupToChange[]> {
  const wanted = [...new Set(names)].sort();
  const lockedGroups = new Set<string>();
  const lockedPartitions = new Map<string, number>();
  if (options.lock) {
    const { rows: groups } = await tx.query<{ group_name: string }>(
      'select group_name from postbox.consumer_groups where group_name = any($1::text[]) order by group_name for update skip locked',
      [wanted],
    );
    for (const row of groups) lockedGroups.add(row.group_name);
    const { rows: partitions } = await tx.query<{ group_name: string }>(
      `select group_name from postbox.group_partitions where group_name = any($1::text[])
       order by group_name, partition for update skip locked`,
      [wanted],
    );
    for (const row of partitions) lockedPartitions.set(row.group_name, (lockedPartitions.get(row.group_name) ?? 0) + 1);
  }
  const { rows } = await tx.query<GroupRow>(readSql, [wanted]);
  const missing = wanted.find((name) => !rows.some((row) => row.group_name === name));
  if (missing !== undefined) {
    throw new PostboxError('POSTBOX_ERR_GROUP_NOT_FOUND', `No consumer group is named ${JSON.stringify(missing)}.`, { group: missing });
  }
  return rows.map((row) => {
    const checkpoints = (row.checkpoints ?? []).map((entry) => ({
      partition: Number(entry.partition),
      after: { transactionId: BigInt(entry.transaction_id), globalPosition: BigInt(entry.position) },
    }));
    return {
      name: row.group_name,
      topics: row.topics,
      partitions: Number(row.partitions),
      startSnapshot: row.start_snapshot,
      checkpoints,
      holders: row.holders ?? [],
      locked:
        options.lock &&
        lockedGroups.has(row.group_name) &&
        lockedPartitions.get(row.group_name) === checkpoints.length &&
        checkpoints.length === Number(row.partitions),
    };
  });
}

/** Whether a process reads the group now, or another transaction was writing its rows. */
export function isInUse(group: GroupToChange): boolean {
  return !group.locked || group.holders.length > 0;
}

/** The refusal of a command that changes a group while a process runs it. */
export function groupBusyError(group: GroupToChange, command: string, waitedMs?: number): PostboxError {
  const who = group.holders.length > 0 ? ` (${group.holders.join(', ')})` : '';
  const waited = waitedMs === undefined ? '' : ` after waiting ${waitedMs} ms`;
  return new PostboxError(
    'POSTBOX_ERR_GROUP_BUSY',
    `Group ${group.name} is still running in some process${who}${waited}: stop every process of the group, wait for their leases to end, and ${command} again.`,
    { group: group.name, holders: group.holders },
  );
}

/**
 * Moves every partition of a locked group to one start, with the group's snapshot of skipped
 * transactions. Leases are cleared, so that a member whose lease ran out cannot commit an old
 * checkpoint over the new one; the partitions' last errors are cleared with them.
 */
export async function moveGroupStart(tx: Executor, group: string, start: ReadStart): Promise<void> {
  await tx.query(
    `with moved as (
       update postbox.group_partitions
       set checkpoint_transaction_id = $2::xid8, checkpoint_position = $3::bigint,
           released_at = case when lease_owner is null then released_at else now() end,
           lease_owner = null, lease_expires_at = null, last_error = null, last_error_at = null, updated_at = now()
       where group_name = $1
     )
     update postbox.consumer_groups set start_snapshot = $4::pg_snapshot, updated_at = now() where group_name = $1`,
    [group, String(start.after.transactionId), String(start.after.globalPosition), start.skipVisibleIn],
  );
}
