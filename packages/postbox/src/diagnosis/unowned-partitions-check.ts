import { strandedPartitions } from '../consumers/status.js';
import { plural } from '../text/plural.js';
import type { DoctorCheck } from './doctor-check.js';

/**
 * Partitions whose messages wait for nobody: unowned for longer than a lease while the group has
 * live members (fail), or every partition of a partitioned group without a live member (warn).
 */
export const unownedPartitionsCheck: DoctorCheck = {
  check: 'unowned-partitions',
  title: 'partitions without an owner',
  needsSchema: true,
  async run({ groups, settings }) {
    const active = (await groups()).filter((group) => group.status !== 'paused');
    const stranded = active.flatMap((group) => {
      const partitions = strandedPartitions(group, settings.leaseTtlMs);
      if (partitions.length === 0) return [];
      const longest = Math.max(...partitions.map((partition) => partition.unownedSeconds));
      const live = group.members.filter((member) => member.live).length;
      return [
        `${group.group}: ${plural(partitions.length, 'partition')} (${partitions.map((partition) => partition.partition).join(', ')}) without an owner for up to ${Math.round(longest)}s while ${plural(live, 'live member')} run${live === 1 ? 's' : ''} it`,
      ];
    });
    const orphaned = active.filter((group) => group.partitions.length > 1 && !group.members.some((member) => member.live));
    if (stranded.length > 0) {
      return {
        verdict: 'fail',
        finding: stranded.join('; '),
        fix: "restart the group's processes so that they spread its partitions again, and look in their logs for why a member did not take its share (`postbox groups list` shows owners and members)",
      };
    }
    if (orphaned.length > 0) {
      return {
        verdict: 'warn',
        finding: `partitioned groups with no live member, so none of their partitions is read: ${orphaned.map((group) => `${group.group} (${plural(group.partitions.length, 'partition')})`).join(', ')}`,
        fix: `start the group's consumers, or, if the group is retired, \`postbox groups delete ${orphaned[0]?.group}\``,
      };
    }
    const partitioned = active.filter((group) => group.partitions.length > 1).length;
    return {
      verdict: 'ok',
      finding:
        partitioned === 0
          ? 'no partitioned group, and no group left with an unowned partition'
          : `every partition of ${plural(partitioned, 'partitioned group')} has an owner or a lease time to get one`,
    };
  },
};
