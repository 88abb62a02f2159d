import { type Command, Option } from 'commander';
import type { ProjectionDeadLetter } from '../projections/projection-dead-letters.js';
import type { ProjectionStatus } from '../projections/projection-status.js';
import { notFound } from '../projections/projection-store.js';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';
import { positiveInteger } from './options.js';
import { table, toJson } from './output.js';

function seconds(value: number): string {
  return `${value < 10 ? value.toFixed(1) : Math.round(value)}s`;
}

function oneLine(text: string | null, length: number): string {
  return text?.replace(/\s+/g, ' ').slice(0, length) ?? '-';
}

function rows(statuses: ProjectionStatus[]): string {
  return table(
    ['PROJECTION', 'STATUS', 'VERSION', 'CATEGORIES', 'LAG', 'LAG AGE', 'REBUILD', 'FAILURES', 'LAST ERROR'],
    statuses.map((status) => [
      status.name,
      status.status,
      `v${status.activeVersion}`,
      status.categories.join(','),
      String(status.lagEvents),
      seconds(status.lagSeconds),
      status.rebuild ? `v${status.rebuild.version}, ${status.rebuild.lagEvents} to go` : '-',
      String(status.failures),
      oneLine(status.lastError, 80),
    ]),
  );
}

function deadLetterRows(letters: ProjectionDeadLetter[]): string {
  return table(
    ['ID', 'VERSION', 'STATUS', 'TYPE', 'KEY', 'ATTEMPTS', 'LAST FAILED', 'ERROR', 'RESOLUTION'],
    letters.map((letter) => [
      letter.id,
      `v${letter.version}`,
      letter.status,
      letter.type ?? '-',
      letter.key ?? '-',
      String(letter.attempts),
      letter.lastFailedAt.toISOString(),
      oneLine(letter.errorMessage, 60),
      letter.resolution ?? '-',
    ]),
  );
}

export function registerProjections(program: Command, context: CliContext): void {
  const projections = program
    .command('projections')
    .description('Show and steer projections; running processes honour pause, resume and rebuild');

  projections
    .command('list')
    .description('Every projection with its status, active version and lag')
    .option('--json', 'one JSON object per line')
    .addOption(databaseUrlOption())
    .action(async (flags: ConnectionFlags & { json?: boolean }) => {
      const statuses = await withPostbox(flags, context.env, (postbox) => postbox.eventStore().projections.status());
      if (flags.json) {
        for (const status of statuses) await context.out.line(toJson(status));
        return;
      }
      if (statuses.length === 0) {
        await context.out.notice('no projections.');
        return;
      }
      await context.out.line(rows(statuses));
    });

  projections
    .command('status')
    .description('One projection: status, versions, lag, rebuild progress, last error')
    .argument('<name>', 'the projection')
    .option('--json', 'print JSON')
    .addOption(databaseUrlOption())
    .action(async (name: string, flags: ConnectionFlags & { json?: boolean }) => {
      const status = await withPostbox(flags, context.env, async (postbox) => {
        const [found] = await postbox.eventStore().projections.status(name);
        if (!found) throw notFound(name);
        return found;
      });
      await context.out.line(flags.json ? toJson(status, true) : rows([status]));
    });

  projections
    .command('dead-letters')
    .description(
      "Dead letters of every version of a projection: open ones, or with --all also resolved ones and why (a rebuild's swap supersedes the old version's)",
    )
    .argument('<name>', 'the projection')
    .option('--all', 'resolved ones too')
    .addOption(new Option('--limit <n>', 'at most this many').argParser(positiveInteger).default(100))
    .option('--json', 'one JSON object per line')
    .addOption(databaseUrlOption())
    .action(async (name: string, flags: ConnectionFlags & { all?: boolean; limit: number; json?: boolean }) => {
      const letters = await withPostbox(flags, context.env, (postbox) =>
        postbox.eventStore().projections.deadLetters(name, { all: flags.all, limit: flags.limit }),
      );
      if (flags.json) {
        for (const letter of letters) await context.out.line(toJson(letter));
        return;
      }
      if (letters.length === 0) {
        await context.out.notice(`projection ${name} has no ${flags.all ? '' : 'open '}dead letters.`);
        return;
      }
      await context.out.line(deadLetterRows(letters));
    });

  for (const [verb, description, done] of [
    ['rebuild', 'Build the next read-model version from the beginning beside the active one; swap when caught up', 'rebuild requested'],
    ['pause', 'Stop the projection in every process (its status shows stopped)', 'paused'],
    ['resume', 'Start a paused projection again (also clears its failure count)', 'resumed'],
  ] as const) {
    projections
      .command(verb)
      .description(description)
      .argument('<name>', 'the projection')
      .addOption(databaseUrlOption())
      .action(async (name: string, flags: ConnectionFlags) => {
        const record = await withPostbox(flags, context.env, (postbox) => postbox.eventStore().projections[verb](name));
        const version = record.rebuildVersion ? ` (building v${record.rebuildVersion} beside v${record.activeVersion})` : '';
        await context.out.line(`Projection ${name}: ${done}${verb === 'rebuild' ? version : ''}.`);
      });
  }
}
