import { type Command, Option } from 'commander';
import { defaults } from '../config/defaults.js';
import type { ScheduledMessage } from '../time/scheduled-messages.js';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';
import { positiveInteger, timeWithZone } from './options.js';
import { table, toJson } from './output.js';

interface ListFlags extends ConnectionFlags {
  topic?: string;
  key?: string;
  dueBefore?: Date;
  limit: number;
  json?: boolean;
}

function summary(message: ScheduledMessage): string[] {
  return [message.id, message.topic, message.type, message.key ?? '-', message.dueAt.toISOString(), message.createdAt.toISOString()];
}

export function registerScheduled(program: Command, context: CliContext): void {
  const scheduled = program
    .command('scheduled')
    .description('List and cancel messages waiting for their delivery time (deliverAt, delayMs, postbox.publish_at)');

  scheduled
    .command('list', { isDefault: true })
    .description('List waiting messages, the soonest due first')
    .option('--topic <topic>', 'only this topic')
    .option('--key <key>', 'only this key')
    .option('--due-before <time>', 'only messages due before this time, with its zone (2025-11-10T09:00:00Z)', timeWithZone)
    .addOption(new Option('--limit <n>', 'at most this many').argParser(positiveInteger).default(defaults.timekeeper.listLimit))
    .option('--json', 'one JSON object per line')
    .addOption(databaseUrlOption())
    .action(async (flags: ListFlags) => {
      const messages = await withPostbox(flags, context.env, (postbox) =>
        postbox.listScheduled({ topic: flags.topic, key: flags.key, dueBefore: flags.dueBefore, limit: flags.limit }),
      );
      if (flags.json) {
        for (const message of messages) await context.out.line(toJson(message));
        return;
      }
      if (messages.length === 0) {
        await context.out.notice('no scheduled messages.');
        return;
      }
      await context.out.line(table(['ID', 'TOPIC', 'TYPE', 'KEY', 'DUE AT', 'WRITTEN AT'], messages.map(summary)));
    });

  scheduled
    .command('cancel')
    .description('Take a waiting message off the list, so that it is never delivered; exits 1 when it is not waiting')
    .argument('<id>', 'the message id')
    .addOption(databaseUrlOption())
    .action(async (id: string, flags: ConnectionFlags) => {
      const cancelled = await withPostbox(flags, context.env, (postbox) => postbox.cancelScheduled(id));
      if (cancelled) {
        await context.out.line(`Cancelled ${id}.`);
        return;
      }
      await context.out.notice(`no message ${id} is waiting: it was delivered already, cancelled before, or never scheduled.`);
      context.exitCode = 1;
    });
}
