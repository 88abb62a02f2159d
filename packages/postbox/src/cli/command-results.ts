import { type Command, Option } from 'commander';
import { defaults } from '../config/defaults.js';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';
import { positiveInteger } from './options.js';

export function registerCommandResults(program: Command, context: CliContext): void {
  const results = program.command('command-results').description("The event store's stored command results (idempotency by command id)");

  results
    .command('prune')
    .description('Delete command results past their time to live, as maintenance does on its timer; prints the count')
    .addOption(
      new Option('--batch-size <n>', 'rows deleted per statement')
        .argParser(positiveInteger)
        .default(defaults.eventStore.commandResultPruneBatchSize),
    )
    .addOption(databaseUrlOption())
    .action(async (flags: ConnectionFlags & { batchSize: number }) => {
      const deleted = await withPostbox(flags, context.env, (postbox) =>
        postbox.eventStore().pruneCommandResults({ batchSize: flags.batchSize }),
      );
      await context.out.line(String(deleted));
    });
}
