import type { GroupReset } from '../consumers/reset.js';
import type { LogPosition } from '../log/position.js';
import { plural } from '../text/plural.js';
import { table } from './output.js';
import { describeResetTarget } from './reset-target.js';

function position(at: LogPosition): string {
  return `${at.transactionId}/${at.globalPosition}`;
}

/** One group's reset: a title, its partitions (position before and after, read again, skipped), and what it leaves alone. */
function renderGroupReset(reset: GroupReset): string {
  const title = `Group ${reset.group} (${reset.topics.join(', ')}): reset to ${describeResetTarget(reset.to)}${reset.dryRun ? ' (dry run: nothing changed)' : ''}`;
  const partitions = table(
    ['PARTITION', 'FROM', 'TO', reset.dryRun ? 'WOULD READ AGAIN' : 'READ AGAIN', reset.dryRun ? 'WOULD SKIP' : 'SKIPPED'],
    reset.partitions.map((partition) => [
      String(partition.partition),
      position(partition.from),
      position(partition.to),
      String(partition.readAgain),
      String(partition.skipped),
    ]),
  );
  const outcome = reset.dryRun
    ? `It would read ${plural(reset.readAgain, 'message')} again and skip ${plural(reset.skipped, 'message')}.`
    : `It reads ${plural(reset.readAgain, 'message')} again and skips ${plural(reset.skipped, 'message')}.`;
  const deadLetters =
    reset.openDeadLetters === 0
      ? 'It has no open dead letters.'
      : `Its ${reset.openDeadLetters} open dead letter${reset.openDeadLetters === 1 ? '' : 's'} ${reset.dryRun ? 'would be' : 'are'} left as they are.`;
  const held =
    reset.heldBy.length > 0
      ? [`It is running now in ${reset.heldBy.join(', ')}: stop every process of the group before resetting it, or reset with --wait.`]
      : [];
  return [title, partitions, `${outcome} ${deadLetters}`, ...held].join('\n');
}

/** The report of `groups reset`, one block per group. */
export function renderGroupResets(resets: readonly GroupReset[]): string {
  return resets.map(renderGroupReset).join('\n\n');
}
