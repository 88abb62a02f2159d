import { type Command, Option } from 'commander';
import type { DeadLetter, DeadLetterFilter, DeadLetterStatus } from '../deadletters/dead-letter-store.js';
import { assertTransactionIdsCurrent } from '../log/transaction-ids.js';
import { redactUrl } from '../sql/connection-secrets.js';
import { plural } from '../text/plural.js';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';
import { CliError } from './errors.js';
import { positiveInteger } from './options.js';
import { table, toJson } from './output.js';

interface FilterFlags extends ConnectionFlags {
  group?: string;
  topic?: string;
}

const statuses = ['open', 'pending', 'retrying', 'retried', 'discarded'] as const;

function filterOptions(command: Command): Command {
  return command
    .addOption(new Option('--group <group>', 'only this consumer group'))
    .addOption(new Option('--topic <topic>', 'only this topic'))
    .addOption(databaseUrlOption());
}

function target(id: string | undefined, flags: FilterFlags & { all?: boolean }): { id: string } | DeadLetterFilter {
  if (id !== undefined && flags.all) throw new CliError('POSTBOX_ERR_USAGE', 'Give an id or --all, not both.');
  if (id !== undefined) return { id };
  if (!flags.all) throw new CliError('POSTBOX_ERR_USAGE', 'Give a dead letter id, or --all (with --group/--topic to narrow it).');
  return { group: flags.group, topic: flags.topic };
}

/** Error texts can quote a connection URL; its password is masked before printing. */
function redacted(letter: DeadLetter): DeadLetter {
  return { ...letter, errorMessage: redactUrl(letter.errorMessage), errorStack: letter.errorStack && redactUrl(letter.errorStack) };
}

function summary(letter: DeadLetter): string[] {
  return [
    letter.id,
    letter.group,
    letter.topic,
    letter.type ?? '',
    String(letter.attempts),
    letter.status,
    letter.lastFailedAt.toISOString(),
    redactUrl(letter.errorMessage.replace(/\s+/g, ' ')).slice(0, 80),
  ];
}

export function registerDeadLetters(program: Command, context: CliContext): void {
  const deadLetters = program.command('dead-letters').description('List, show, retry and discard messages their group gave up on');

  filterOptions(deadLetters.command('list').description('List dead letters, oldest first (open ones unless --status says otherwise)'))
    .addOption(new Option('--status <status>', 'which ones').choices(statuses).default('open'))
    .addOption(new Option('--limit <n>', 'at most this many').argParser(positiveInteger).default(100))
    .option('--json', 'one JSON object per line')
    .action(async (flags: FilterFlags & { status: DeadLetterStatus | 'open'; limit: number; json?: boolean }) => {
      const letters = await withPostbox(flags, context.env, (postbox) =>
        postbox.deadLetters.list({ group: flags.group, topic: flags.topic, status: flags.status, limit: flags.limit }),
      );
      if (flags.json) {
        for (const letter of letters) await context.out.line(toJson(redacted(letter)));
        return;
      }
      if (letters.length === 0) {
        await context.out.notice('no dead letters.');
        return;
      }
      await context.out.line(table(['ID', 'GROUP', 'TOPIC', 'TYPE', 'ATTEMPTS', 'STATUS', 'LAST FAILURE', 'ERROR'], letters.map(summary)));
    });

  deadLetters
    .command('show')
    .description('Show one dead letter whole: the message, the error and its stack')
    .argument('<id>', 'the dead letter id')
    .addOption(databaseUrlOption())
    .action(async (id: string, flags: ConnectionFlags) => {
      const letter = await withPostbox(flags, context.env, (postbox) => postbox.deadLetters.get(id));
      await context.out.line(toJson(redacted(letter), true));
    });

  filterOptions(
    deadLetters
      .command('retry')
      .description('Redeliver dead letters to their own group (only that group sees them again)')
      .argument('[id]', 'the dead letter id'),
  )
    .option('--all', 'every pending dead letter (narrow with --group/--topic); those already retrying are left as they are')
    .action(async (id: string | undefined, flags: FilterFlags & { all?: boolean }) => {
      const count = await withPostbox(flags, context.env, async (postbox) => {
        // Retried letters go back to their group, which cannot run while the ids are behind.
        await assertTransactionIdsCurrent(postbox.db);
        return postbox.deadLetters.retry(target(id, flags));
      });
      await context.out.line(`${plural(count, 'dead letter')} queued for redelivery.`);
    });

  filterOptions(
    deadLetters
      .command('discard')
      .description('Mark dead letters as discarded; they stay on record')
      .argument('[id]', 'the dead letter id'),
  )
    .option('--all', 'every open dead letter, pending or retrying (narrow with --group/--topic)')
    .action(async (id: string | undefined, flags: FilterFlags & { all?: boolean }) => {
      const count = await withPostbox(flags, context.env, (postbox) => postbox.deadLetters.discard(target(id, flags)));
      await context.out.line(`${plural(count, 'dead letter')} discarded.`);
    });
}
