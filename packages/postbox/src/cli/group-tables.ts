import type { GroupStatus } from '../consumers/status.js';
import { redactUrl } from '../sql/connection-secrets.js';
import { table } from './output.js';

function seconds(value: number): string {
  return `${value < 10 ? value.toFixed(1) : Math.round(value)}s`;
}

function owners(group: GroupStatus): string {
  if (group.partitions.length === 1) {
    const [partition] = group.partitions;
    if (partition?.owner) return partition.owner;
    return partition?.expiredOwner ? `${partition.expiredOwner} (expired)` : '-';
  }
  const live = group.members.filter((member) => member.live).length;
  const held = group.partitions.filter((partition) => partition.owner !== null).length;
  return `${live} member${live === 1 ? '' : 's'}, ${held}/${group.partitions.length} partitions held`;
}

function checkpoint(group: GroupStatus): string {
  if (group.partitions.length !== 1) return `${group.partitions.length} partitions`;
  const position = group.partitions[0]?.checkpoint;
  return position ? `${position.transactionId}/${position.globalPosition}` : '-';
}

/** The groups, one line each: lag, owner (or members), checkpoint (or partition count), last error. */
export function groupsTable(groups: readonly GroupStatus[]): string {
  if (groups.length === 0) return 'No consumer groups.';
  return table(
    ['GROUP', 'TOPICS', 'LAG', 'LAG AGE', 'LEASE OWNER', 'CHECKPOINT', 'LAST ERROR'],
    groups.map((group) => [
      group.ephemeral ? `${group.group} (ephemeral)` : group.group,
      group.topics.join(','),
      String(group.lagMessages),
      seconds(group.lagSeconds),
      owners(group),
      checkpoint(group),
      group.lastError === null ? '-' : redactUrl(group.lastError.replace(/\s+/g, ' ')),
    ]),
  );
}

/** Every partition of the groups that have more than one: owner, checkpoint, lag and how long it has gone unowned. */
export function partitionsTable(groups: readonly GroupStatus[]): string | undefined {
  const rows = groups
    .filter((group) => group.partitions.length > 1)
    .flatMap((group) =>
      group.partitions.map((partition) => [
        group.group,
        String(partition.partition),
        partition.owner ?? (partition.expiredOwner ? `${partition.expiredOwner} (expired)` : '-'),
        `${partition.checkpoint.transactionId}/${partition.checkpoint.globalPosition}`,
        String(partition.lagMessages),
        seconds(partition.lagSeconds),
        partition.owner ? '-' : seconds(partition.unownedSeconds),
      ]),
    );
  if (rows.length === 0) return undefined;
  return table(['GROUP', 'PARTITION', 'OWNER', 'CHECKPOINT', 'LAG', 'LAG AGE', 'UNOWNED FOR'], rows);
}

/** The processes running each group, live or not, and the partitions each holds. */
export function membersTable(groups: readonly GroupStatus[]): string | undefined {
  const rows = groups.flatMap((group) =>
    group.members.map((member) => [
      group.group,
      member.member,
      member.live ? 'live' : 'expired',
      member.partitions.length === 0 ? '-' : member.partitions.join(','),
    ]),
  );
  if (rows.length === 0) return undefined;
  return table(['GROUP', 'MEMBER', 'HEARTBEAT', 'PARTITIONS'], rows);
}

/** The groups, then their partitions and members where there are any. */
export function renderGroups(groups: readonly GroupStatus[]): string {
  return [groupsTable(groups), partitionsTable(groups), membersTable(groups)].filter((part) => part !== undefined).join('\n\n');
}

/** A group as JSON, its last errors without passwords. */
export function shownGroup(group: GroupStatus): GroupStatus {
  return {
    ...group,
    lastError: group.lastError && redactUrl(group.lastError),
    partitions: group.partitions.map((partition) => ({ ...partition, lastError: partition.lastError && redactUrl(partition.lastError) })),
  };
}
