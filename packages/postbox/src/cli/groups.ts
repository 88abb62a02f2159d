import { type Command, Option } from 'commander';
import { defaults } from '../config/defaults.js';
import type { ResetTarget } from '../consumers/reset.js';
import { PostboxError } from '../errors/postbox-error.js';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';
import { renderGroupResets } from './group-reset-report.js';
import { renderGroups, shownGroup } from './group-tables.js';
import { duration, positiveInteger } from './options.js';
import { toJson } from './output.js';
import { resetTarget } from './reset-target.js';

export function registerGroups(program: Command, context: CliContext): void {
  const groups = program.command('groups').description('List and manage consumer groups');

  groups
    .command('list', { isDefault: true })
    .description('List consumer groups with their lag, partitions (owner, checkpoint, lag) and members')
    .option('--group <name>', 'only this group')
    .option('--json', 'print JSON')
    .addOption(databaseUrlOption())
    .action(async (options: ConnectionFlags & { group?: string; json?: boolean }) => {
      const found = await withPostbox(options, context.env, (postbox) => postbox.groupStatus(options.group));
      if (options.group !== undefined && found.length === 0) {
        throw new PostboxError('POSTBOX_ERR_GROUP_NOT_FOUND', `No consumer group is named ${JSON.stringify(options.group)}.`, {
          group: options.group,
        });
      }
      await context.out.line(options.json ? toJson(found.map(shownGroup), true) : renderGroups(found));
    });

  groups
    .command('repartition')
    .description(
      'Give a group a new number of partitions. Every process of the group must be stopped; each new partition starts at the ' +
        'earliest checkpoint of the old ones, so the messages between it and the others are delivered again',
    )
    .argument('<name>', 'the group')
    .requiredOption('--partitions <n>', 'the new number of partitions', positiveInteger)
    .addOption(databaseUrlOption())
    .action(async (name: string, options: ConnectionFlags & { partitions: number }) => {
      const result = await withPostbox(options, context.env, (postbox) => postbox.repartitionGroup(name, options.partitions));
      await context.out.line(
        `Group ${name} has ${result.to} partitions (it had ${result.from}); ${result.redelivered} message${result.redelivered === 1 ? '' : 's'} will be delivered again.`,
      );
    });

  groups
    .command('reset')
    .description(
      'Move groups to read from another place in the log: earliest, latest, a time (the messages committed from then on) or a ' +
        'message id (that message first). Every process of the groups must be stopped, or --wait for them; --dry-run prints, ' +
        'per group and partition, how many messages would be read again or skipped, and changes nothing',
    )
    .argument('<names...>', 'the groups; all of them are reset, or none')
    .requiredOption('--to <place>', 'earliest, latest, a time with its zone (2025-11-10T09:00:00Z), or a message id', resetTarget)
    .option('--dry-run', 'print what the reset would do, and change nothing')
    .addOption(
      new Option(
        '--wait [duration]',
        `wait for the groups' processes to stop (${defaults.groupReset.waitMs / 1_000}s without a duration)`,
      ).argParser(duration),
    )
    .option('--json', 'print JSON')
    .addOption(databaseUrlOption())
    .action(
      async (names: string[], options: ConnectionFlags & { to: ResetTarget; dryRun?: boolean; wait?: true | number; json?: boolean }) => {
        const resets = await withPostbox(options, context.env, (postbox) =>
          postbox.resetGroups({ groups: names, to: options.to, dryRun: options.dryRun, wait: options.wait }),
        );
        await context.out.line(options.json ? toJson(resets, true) : renderGroupResets(resets));
      },
    );

  groups
    .command('cleanup')
    .description('Delete ephemeral groups not seen for a while and not leased now; prints the deleted names')
    .addOption(
      new Option('--older-than <duration>', 'how long a group must have gone unseen')
        .argParser(duration)
        .default(defaults.zombies.staleAfterMs, '24h'),
    )
    .addOption(databaseUrlOption())
    .action(async (options: ConnectionFlags & { olderThan: number }) => {
      const deleted = await withPostbox(options, context.env, (postbox) => postbox.cleanupZombieGroups(options.olderThan));
      for (const name of deleted) await context.out.line(name);
      await context.out.notice(`deleted ${deleted.length} stale ephemeral group${deleted.length === 1 ? '' : 's'}.`);
    });

  groups
    .command('delete')
    .description('Delete a consumer group and its checkpoint; a group of that name starts over when next used')
    .argument('<name>', 'the group')
    .addOption(databaseUrlOption())
    .action(async (name: string, options: ConnectionFlags) => {
      const deleted = await withPostbox(options, context.env, (postbox) => postbox.deleteGroup(name));
      if (!deleted)
        throw new PostboxError('POSTBOX_ERR_GROUP_NOT_FOUND', `No consumer group is named ${JSON.stringify(name)}.`, { group: name });
      await context.out.line(`Deleted group ${name}.`);
    });
}
