import { type Command, Option } from 'commander';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';
import { collect, duration } from './options.js';

export function registerRetention(program: Command, context: CliContext): void {
  program
    .command('retention')
    .description('Delete old plain messages that every consumer group reading their topic has passed; prints the count')
    .addOption(
      new Option('--older-than <duration>', 'delete messages older than this, such as 7d').argParser(duration).makeOptionMandatory(),
    )
    .option('--topic <topic>', 'only this topic; repeat for more (default: every topic)', collect)
    .addOption(databaseUrlOption())
    .action(async (options: ConnectionFlags & { olderThan: number; topic?: string[] }) => {
      const deleted = await withPostbox(options, context.env, (postbox) =>
        postbox.applyRetention({ olderThanMs: options.olderThan, topics: options.topic }),
      );
      await context.out.line(String(deleted));
    });
}
