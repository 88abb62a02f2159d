import type { Command } from 'commander';
import type { LogStatus } from '../consumers/status.js';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';
import { renderGroups, shownGroup } from './group-tables.js';
import { table, toJson } from './output.js';

function seconds(value: number): string {
  return `${value < 10 ? value.toFixed(1) : Math.round(value)}s`;
}

function render(status: LogStatus): string {
  const topics =
    status.topics.length === 0
      ? 'No messages.'
      : table(
          ['TOPIC', 'MESSAGES', 'LAST PUBLISHED'],
          status.topics.map((topic) => [topic.topic, String(topic.messages), topic.lastPublishedAt?.toISOString() ?? '-']),
        );
  return `${renderGroups(status.groups)}\n\n${topics}\n\nWatermark delay: ${seconds(status.watermarkDelaySeconds)}`;
}

export function registerStatus(program: Command, context: CliContext): void {
  program
    .command('status')
    .description(
      'Show consumer groups (lag, owners, checkpoints, last error), their partitions and members, topics and the watermark delay',
    )
    .option('--json', 'print JSON')
    .addOption(databaseUrlOption())
    .action(async (options: ConnectionFlags & { json?: boolean }) => {
      const status = await withPostbox(options, context.env, (postbox) => postbox.status());
      const shown = { ...status, groups: status.groups.map(shownGroup) };
      await context.out.line(options.json ? toJson(shown, true) : render(shown));
    });
}
