import { type Command, Option } from 'commander';
import { defaults } from '../config/defaults.js';
import { type MissedPolicy, missedPolicies } from '../time/missed-ticks.js';
import { type Schedule, scheduleNotFound } from '../time/schedule-store.js';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';
import { header } from './options.js';
import { table, toJson } from './output.js';
import { parsePayload } from './publish.js';

interface AddFlags extends ConnectionFlags {
  cron: string;
  timeZone: string;
  topic: string;
  type: string;
  key?: string;
  payload?: string;
  header?: [string, string][];
  missed: MissedPolicy;
}

function summary(schedule: Schedule): string[] {
  return [
    schedule.name,
    schedule.cron,
    schedule.timeZone,
    schedule.message.topic,
    schedule.message.type,
    schedule.missed,
    schedule.status,
    schedule.nextTickAt?.toISOString() ?? '-',
    schedule.lastTickAt?.toISOString() ?? '-',
  ];
}

function describe(schedule: Schedule): string {
  const next =
    schedule.status === 'paused' ? 'paused' : `next tick ${schedule.nextTickAt?.toISOString() ?? 'none: the expression has no tick left'}`;
  return `Schedule ${schedule.name} (${schedule.cron}, ${schedule.timeZone}): ${next}.`;
}

export function registerSchedules(program: Command, context: CliContext): void {
  const schedules = program
    .command('schedules')
    .description('Recurring messages: one message per tick of a cron expression in a time zone, appended once by the timekeeper');

  schedules
    .command('add')
    .description(
      'Define a schedule, or change the one of that name (a changed expression or time zone starts over from now; a paused one stays paused)',
    )
    .argument('<name>', 'the schedule name')
    .requiredOption('--cron <expression>', 'five fields (minute hour day month weekday), six with seconds first, or @hourly, @daily...')
    .option('--time-zone <zone>', 'IANA time zone the expression is read in', defaults.timekeeper.timeZone)
    .requiredOption('--topic <topic>', 'topic of each tick message')
    .requiredOption('--type <type>', 'type of each tick message')
    .option('--key <key>', 'partition key of each tick message')
    .option('--payload <json>', 'the payload, as JSON (default: null)')
    .option('--header <name=value>', 'a custom header; repeat for more', header)
    .addOption(
      new Option('--missed <policy>', 'ticks found long past: append none, the latest, or each of them')
        .choices(missedPolicies)
        .default(defaults.timekeeper.missed),
    )
    .addOption(databaseUrlOption())
    .action(async (name: string, flags: AddFlags) => {
      const schedule = await withPostbox(flags, context.env, (postbox) =>
        postbox.schedule({
          name,
          cron: flags.cron,
          timeZone: flags.timeZone,
          missed: flags.missed,
          message: {
            topic: flags.topic,
            type: flags.type,
            key: flags.key ?? null,
            payload: flags.payload === undefined ? null : parsePayload(flags.payload),
            headers: Object.fromEntries(flags.header ?? []),
          },
        }),
      );
      await context.out.line(describe(schedule));
    });

  schedules
    .command('list', { isDefault: true })
    .description('List schedules with their status, next and last tick')
    .option('--json', 'print JSON')
    .addOption(databaseUrlOption())
    .action(async (flags: ConnectionFlags & { json?: boolean }) => {
      const found = await withPostbox(flags, context.env, (postbox) => postbox.schedules.list());
      if (flags.json) {
        await context.out.line(toJson(found, true));
        return;
      }
      if (found.length === 0) {
        await context.out.notice('no schedules.');
        return;
      }
      await context.out.line(
        table(['NAME', 'CRON', 'TIME ZONE', 'TOPIC', 'TYPE', 'MISSED', 'STATUS', 'NEXT TICK', 'LAST TICK'], found.map(summary)),
      );
    });

  schedules
    .command('pause')
    .description('Stop appending ticks; those that pass while paused are never appended')
    .argument('<name>', 'the schedule name')
    .addOption(databaseUrlOption())
    .action(async (name: string, flags: ConnectionFlags) => {
      await context.out.line(describe(await withPostbox(flags, context.env, (postbox) => postbox.schedules.pause(name))));
    });

  schedules
    .command('resume')
    .description('Append ticks again, from the first after now')
    .argument('<name>', 'the schedule name')
    .addOption(databaseUrlOption())
    .action(async (name: string, flags: ConnectionFlags) => {
      await context.out.line(describe(await withPostbox(flags, context.env, (postbox) => postbox.schedules.resume(name))));
    });

  schedules
    .command('delete')
    .description('Delete a schedule (code that defines it at start-up defines it again: remove it there, or pause it)')
    .argument('<name>', 'the schedule name')
    .addOption(databaseUrlOption())
    .action(async (name: string, flags: ConnectionFlags) => {
      const deleted = await withPostbox(flags, context.env, (postbox) => postbox.schedules.delete(name));
      if (!deleted) throw scheduleNotFound(name);
      await context.out.line(`Deleted schedule ${name}.`);
    });
}
