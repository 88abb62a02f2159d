import type { GroupStatus } from '../consumers/status.js';
import { redactUrl } from '../sql/connection-secrets.js';
import { plural } from '../text/plural.js';
import type { DoctorCheck } from './doctor-check.js';

function isRunning(group: GroupStatus): boolean {
  return group.members.some((member) => member.live) || group.partitions.some((partition) => partition.owner !== null);
}

function waiting(group: GroupStatus): string {
  const error = group.lastError === null ? '' : `, last error: ${JSON.stringify(redactUrl(group.lastError.replace(/\s+/g, ' ')))}`;
  return `${group.group} (${plural(group.lagMessages, 'message')} waiting, the oldest for ${Math.round(group.lagSeconds)}s${error})`;
}

/**
 * Groups with messages to handle that do not move: some process runs the group, yet its oldest
 * unhandled message has waited longer than the threshold (fail: handlers fail or hang); or no
 * process runs it at all (warn: it may be down, or retired). Paused groups wait on purpose, and an
 * ephemeral group nobody runs is left to zombie clean-up.
 */
export const stalledGroupsCheck: DoctorCheck = {
  check: 'stalled-groups',
  title: 'stalled consumer groups',
  needsSchema: true,
  async run({ groups, settings }) {
    const behind = (await groups()).filter((group) => group.status !== 'paused' && group.lagMessages > 0);
    const stuck = behind.filter((group) => isRunning(group) && group.lagSeconds >= settings.stalledAfterSeconds);
    const unattended = behind.filter((group) => !isRunning(group) && !group.ephemeral);
    if (stuck.length > 0) {
      return {
        verdict: 'fail',
        finding: `running but not moving for over ${settings.stalledAfterSeconds}s: ${stuck.map(waiting).join('; ')}${unattended.length > 0 ? `; run by no process: ${unattended.map(waiting).join('; ')}` : ''}`,
        fix: `look at the last error and the logs of the group's processes; \`postbox groups list --group ${stuck[0]?.group}\` shows who holds which partition, and a message that cannot be handled goes to dead letters once its retries are spent`,
      };
    }
    if (unattended.length > 0) {
      return {
        verdict: 'warn',
        finding: `run by no process: ${unattended.map(waiting).join('; ')}`,
        fix: `start the group's consumers, or, if the group is retired, \`postbox groups delete ${unattended[0]?.group}\``,
      };
    }
    return {
      verdict: 'ok',
      finding:
        behind.length === 0
          ? 'every group has handled all its messages'
          : `${plural(behind.length, 'group')} behind, each moving or within ${settings.stalledAfterSeconds}s`,
    };
  },
};
