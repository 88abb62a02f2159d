import type { Command } from 'commander';
import type { LogStatus } from '../consumers/status.js';
import { holderAge, oneLine, type WatermarkHolder } from '../log/watermark.js';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';
import { errorLine } from './errors.js';
import { renderGroups, shownGroup } from './group-tables.js';
import { table, toJson } from './output.js';
import { renderParkedCounts } from './parked.js';
import { renderTimeSummary } from './time-summary.js';
import { transactionIdsBanner, transactionIdsError } from './transaction-ids-banner.js';

function seconds(value: number): string {
  return `${value < 10 ? value.toFixed(1) : Math.round(value)}s`;
}

/** Characters of a holder's query shown in the table; --json has the whole preview. */
const queryColumnChars = 60;

/** The transactions holding readers back, the watermark's holder marked; nothing when none matters. */
function renderHolders(holders: readonly WatermarkHolder[]): string {
  if (holders.length === 0) return '';
  const rows = holders.map((holder) => [
    `${holder.pid ?? 'prepared'}${holder.holdsWatermark ? '*' : ''}`,
    holder.database ?? '-',
    holder.user ?? '-',
    holder.applicationName ?? '-',
    holder.kind === 'prepared' ? '-' : (holder.clientAddress ?? 'local'),
    holderAge(holder),
    holder.state ?? '-',
    holder.queryStart?.toISOString() ?? '-',
    holder.kind === 'prepared'
      ? `gid ${JSON.stringify(holder.gid)}`
      : holder.query === null
        ? '-'
        : oneLine(holder.query, queryColumnChars),
  ]);
  return `\nHeld back by (* holds the watermark):\n${table(
    ['PID', 'DATABASE', 'USER', 'APPLICATION', 'CLIENT', 'TRANSACTION AGE', 'STATE', 'QUERY START', 'QUERY'],
    rows,
  )}`;
}

function render(status: LogStatus): string {
  const topics =
    status.topics.length === 0
      ? 'No messages.'
      : table(
          ['TOPIC', 'MESSAGES', 'LAST PUBLISHED'],
          status.topics.map((topic) => [topic.topic, String(topic.messages), topic.lastPublishedAt?.toISOString() ?? '-']),
        );
  return `${renderGroups(status.groups)}\n\n${topics}\n\nWatermark delay: ${seconds(status.watermarkDelaySeconds)}${renderHolders(status.watermarkHolders)}`;
}

export function registerStatus(program: Command, context: CliContext): void {
  program
    .command('status')
    .description(
      'Show consumer groups (lag, owners, checkpoints, last error), their partitions and members, topics, the watermark delay ' +
        'and the open transactions (of any database of the server) that hold readers back; scheduled messages, schedules and the timekeeper; ' +
        'parked messages by group',
    )
    .option('--json', 'print JSON')
    .addOption(databaseUrlOption())
    .action(async (options: ConnectionFlags & { json?: boolean }) => {
      const [status, transactionIds, time, parked] = await withPostbox(options, context.env, (postbox) =>
        Promise.all([postbox.status(), postbox.checkTransactionIds(), postbox.timeStatus(), postbox.parked.counts()]),
      );
      const shown = { ...status, groups: status.groups.map(shownGroup), transactionIds, time, parked };
      await context.out.line(
        options.json
          ? toJson(shown, true)
          : `${transactionIdsBanner(transactionIds)}${render(shown)}\n\n${renderTimeSummary(time)}${renderParkedCounts(parked)}`,
      );
      // Status still shows everything, but a script must not take a log that readers refuse for a healthy one.
      const behind = transactionIdsError(transactionIds);
      if (behind) {
        if (options.json) await context.out.error(errorLine(behind));
        context.exitCode = 1;
      }
    });
}
