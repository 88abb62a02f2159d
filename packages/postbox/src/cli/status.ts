import type { Command } from 'commander';
import type { GroupStatus, LogStatus } from '../consumers/status.js';
import { redactUrl } from '../sql/connection-secrets.js';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';
import { table, toJson } from './output.js';

function seconds(value: number): string {
  return `${value < 10 ? value.toFixed(1) : Math.round(value)}s`;
}

function lease(group: GroupStatus): string {
  if (!group.leaseOwner) return '-';
  return group.leaseActive ? group.leaseOwner : `${group.leaseOwner} (expired)`;
}

function render(status: LogStatus): string {
  const groups =
    status.groups.length === 0
      ? 'No consumer groups.'
      : table(
          ['GROUP', 'TOPICS', 'LAG', 'LAG AGE', 'LEASE OWNER', 'CHECKPOINT', 'LAST ERROR'],
          status.groups.map((group) => [
            group.ephemeral ? `${group.group} (ephemeral)` : group.group,
            group.topics.join(','),
            String(group.lagMessages),
            seconds(group.lagSeconds),
            lease(group),
            `${group.checkpoint.transactionId}/${group.checkpoint.globalPosition}`,
            group.lastError === null ? '-' : redactUrl(group.lastError.replace(/\s+/g, ' ')),
          ]),
        );
  const topics =
    status.topics.length === 0
      ? 'No messages.'
      : table(
          ['TOPIC', 'MESSAGES', 'LAST PUBLISHED'],
          status.topics.map((topic) => [topic.topic, String(topic.messages), topic.lastPublishedAt?.toISOString() ?? '-']),
        );
  return `${groups}\n\n${topics}\n\nWatermark delay: ${seconds(status.watermarkDelaySeconds)}`;
}

export function registerStatus(program: Command, context: CliContext): void {
  program
    .command('status')
    .description('Show consumer groups (lag, lease, checkpoint, last error), topics and the watermark delay')
    .option('--json', 'print JSON')
    .addOption(databaseUrlOption())
    .action(async (options: ConnectionFlags & { json?: boolean }) => {
      const status = await withPostbox(options, context.env, (postbox) => postbox.status());
      const shown = {
        ...status,
        groups: status.groups.map((group) => ({ ...group, lastError: group.lastError && redactUrl(group.lastError) })),
      };
      await context.out.line(options.json ? toJson(shown, true) : render(shown));
    });
}
