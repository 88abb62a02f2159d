import { type Command, Option } from 'commander';
import { defaults } from '../config/defaults.js';
import { PostboxError } from '../errors/postbox-error.js';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';
import { duration } from './options.js';

export function registerGroups(program: Command, context: CliContext): void {
  const groups = program.command('groups').description('Manage consumer groups');

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
