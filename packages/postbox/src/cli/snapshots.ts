import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Command, Option } from 'commander';
import { type AggregateDefinition, defineAggregate } from '../eventstore/aggregate.js';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';
import { CliError } from './errors.js';
import { positiveInteger } from './options.js';

interface CreateFlags extends ConnectionFlags {
  module: string;
  export: string;
  category?: string;
  every?: number;
  limit?: number;
}

/** Imports the module and takes the aggregate definition it exports (by name, or the default export). */
export async function loadAggregate(modulePath: string, exportName: string, cwd: string): Promise<AggregateDefinition> {
  const url = pathToFileURL(isAbsolute(modulePath) ? modulePath : resolve(cwd, modulePath)).href;
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    throw new CliError('POSTBOX_ERR_USAGE', `Cannot import --module ${modulePath}: ${(error as Error).message}`, { cause: error });
  }
  const candidate = loaded[exportName];
  if (candidate === undefined) {
    const names = Object.keys(loaded).join(', ') || 'nothing';
    throw new CliError(
      'POSTBOX_ERR_USAGE',
      `--module ${modulePath} has no export named ${exportName} (it exports ${names}); pick one with --export.`,
    );
  }
  try {
    return defineAggregate(candidate as AggregateDefinition);
  } catch (error) {
    throw new CliError(
      'POSTBOX_ERR_USAGE',
      `Export ${exportName} of ${modulePath} is not an aggregate definition: ${(error as Error).message}`,
    );
  }
}

export function registerSnapshots(program: Command, context: CliContext): void {
  const snapshots = program.command('snapshots').description('Create event-stream snapshots in bulk');

  snapshots
    .command('create')
    .description(
      'Snapshot the streams of a category whose snapshot is missing, stale, damaged or --every events behind. ' +
        'The aggregate (name, initialState, evolve, snapshots options) comes from a module you build, e.g. --module ./dist/order.js',
    )
    .requiredOption('--module <path>', 'an ES module exporting the aggregate definition (defineAggregate)')
    .addOption(new Option('--export <name>', 'the export that holds it').default('default'))
    .option('--category <category>', "the streams' category (default: the aggregate's own)")
    .addOption(new Option('--every <n>', 'snapshot streams at least this many events past their snapshot').argParser(positiveInteger))
    .addOption(new Option('--limit <n>', 'stop after this many snapshots').argParser(positiveInteger))
    .addOption(databaseUrlOption())
    .action(async (flags: CreateFlags) => {
      const aggregate = await loadAggregate(flags.module, flags.export, process.cwd());
      const result = await withPostbox(flags, context.env, (postbox) =>
        postbox.eventStore({ upcasters: aggregate.upcasters }).createSnapshots(aggregate, {
          category: flags.category,
          every: flags.every,
          limit: flags.limit,
        }),
      );
      await context.out.line(
        `Created ${result.created} snapshot${result.created === 1 ? '' : 's'} of ${aggregate.name} (${result.examined} stream${result.examined === 1 ? '' : 's'} needed one, ${result.failed} failed).`,
      );
      if (result.failed > 0) context.exitCode = 1;
    });
}
