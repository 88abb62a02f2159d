import type { GroupStatus } from '../../consumers/status.js';
import { redactUrl } from '../../sql/connection-secrets.js';
import { positionJson } from './position-json.js';

/**
 * A group as the console shows it. `leaseOwner`, `leaseActive` and `checkpoint` describe the only
 * partition of a group that has one, and are null (false) for a partitioned group.
 */
export function groupJson(status: GroupStatus) {
  const [only] = status.partitions.length === 1 ? status.partitions : [];
  return {
    group: status.group,
    topics: status.topics,
    status: status.status,
    ephemeral: status.ephemeral,
    leaseOwner: only ? (only.owner ?? only.expiredOwner) : null,
    leaseActive: only ? only.owner !== null : false,
    lagMessages: status.lagMessages,
    lagSeconds: status.lagSeconds,
    lastError: status.lastError === null ? null : redactUrl(status.lastError),
    lastSeenAt: status.lastSeenAt.toISOString(),
    checkpoint: only ? positionJson(only.checkpoint) : null,
    partitions: status.partitions.map((partition) => ({
      partition: partition.partition,
      owner: partition.owner,
      expiredOwner: partition.expiredOwner,
      checkpoint: positionJson(partition.checkpoint),
      lagMessages: partition.lagMessages,
      lagSeconds: partition.lagSeconds,
      unownedSeconds: partition.unownedSeconds,
      lastError: partition.lastError === null ? null : redactUrl(partition.lastError),
    })),
    members: status.members.map((member) => ({
      member: member.member,
      live: member.live,
      joinedAt: member.joinedAt.toISOString(),
      expiresAt: member.expiresAt.toISOString(),
      partitions: member.partitions,
    })),
  };
}
