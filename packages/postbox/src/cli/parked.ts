import { type Command, Option } from 'commander';
import { defaults } from '../config/defaults.js';
import type { ParkedCount, ParkedTarget } from '../parking/parked-admin.js';
import { type ParkedMessage, type ParkedStatus, parkedStatuses } from '../parking/parked-message.js';
import { redactUrl } from '../sql/connection-secrets.js';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';
import { CliError } from './errors.js';
import { positiveInteger } from './options.js';
import { table, toJson } from './output.js';

interface KeyFlags extends ConnectionFlags {
  group?: string;
  key?: string;
}

/** Error texts can quote a connection URL; its password is masked before printing. */
function redacted(parked: ParkedMessage): ParkedMessage {
  return { ...parked, errorMessage: parked.errorMessage && redactUrl(parked.errorMessage) };
}

function state(parked: ParkedMessage): string {
  if (parked.status === 'dead_lettered')
    return parked.deadLetterId ? `held by dead letter ${parked.deadLetterId}` : 'held by a dead letter';
  if (parked.status === 'follower') return parked.nextAttemptAt ? 'next, due now' : 'behind';
  return `waiting until ${parked.nextAttemptAt?.toISOString() ?? '-'}`;
}

function summary(parked: ParkedMessage): string[] {
  return [
    parked.id,
    parked.group,
    parked.key ?? '-',
    parked.topic,
    parked.type,
    `${parked.position.transactionId}/${parked.position.globalPosition}`,
    String(parked.attempts),
    state(parked),
    parked.errorMessage === null ? '-' : redactUrl(parked.errorMessage.replace(/\s+/g, ' ')).slice(0, 80),
  ];
}

function releaseTarget(id: string | undefined, flags: KeyFlags): ParkedTarget {
  if (id !== undefined && (flags.group !== undefined || flags.key !== undefined)) {
    throw new CliError('POSTBOX_ERR_USAGE', 'Give a parked message id, or --group and --key, not both.');
  }
  if (id !== undefined) return { id };
  if (flags.group === undefined || flags.key === undefined) {
    throw new CliError('POSTBOX_ERR_USAGE', 'Give a parked message id, or --group and --key of the key to release.');
  }
  return { group: flags.group, key: flags.key };
}

/** The parked messages of each group, after a blank line; nothing when no group has any. */
export function renderParkedCounts(counts: readonly ParkedCount[]): string {
  if (counts.length === 0) return '';
  const rows = counts.map((count) => [
    count.group,
    String(count.total),
    String(count.waiting),
    String(count.followers),
    String(count.deadLettered),
    `${Math.round(count.oldestSeconds)}s`,
  ]);
  return `\n\n${table(['GROUP', 'PARKED', 'WAITING', 'BEHIND', 'HELD BY DEAD LETTER', 'OLDEST'], rows)}`;
}

export function registerParked(program: Command, context: CliContext): void {
  const parked = program
    .command('parked')
    .description(
      'List, release and discard messages that routes with `park` took out of their batches, and the later messages of their keys',
    );

  parked
    .command('list')
    .description("List parked messages, each key's in log order: the first of a key is attempted next")
    .addOption(new Option('--group <group>', 'only this consumer group'))
    .addOption(new Option('--key <key>', 'only this key'))
    .addOption(new Option('--status <status>', 'only these').choices(parkedStatuses))
    .addOption(new Option('--limit <n>', 'at most this many').argParser(positiveInteger).default(defaults.router.park.listLimit))
    .option('--json', 'one JSON object per line')
    .addOption(databaseUrlOption())
    .action(async (flags: KeyFlags & { status?: ParkedStatus; limit: number; json?: boolean }) => {
      const list = await withPostbox(flags, context.env, (postbox) =>
        postbox.parked.list({ group: flags.group, key: flags.key, status: flags.status, limit: flags.limit }),
      );
      if (flags.json) {
        for (const message of list) await context.out.line(toJson(redacted(message)));
        return;
      }
      if (list.length === 0) {
        await context.out.notice('no parked messages.');
        return;
      }
      await context.out.line(
        table(['ID', 'GROUP', 'KEY', 'TOPIC', 'TYPE', 'POSITION', 'ATTEMPTS', 'STATE', 'LAST ERROR'], list.map(summary)),
      );
    });

  parked
    .command('release')
    .description(
      "Attempt a key's first parked message now (the rest follow in order); a key held by a dead letter is let go, the dead letter stays open",
    )
    .argument('[id]', 'a parked message id: its key is released (a message without a key, itself)')
    .addOption(new Option('--group <group>', 'the consumer group of the key'))
    .addOption(new Option('--key <key>', 'the key to release'))
    .addOption(databaseUrlOption())
    .action(async (id: string | undefined, flags: KeyFlags) => {
      const target = releaseTarget(id, flags);
      const released = await withPostbox(flags, context.env, (postbox) => postbox.parked.release(target));
      const key = released.key === null ? `message ${released.messageId}` : `key ${JSON.stringify(released.key)}`;
      await context.out.line(
        released.status === 'dead_lettered'
          ? `Released ${key} of group ${released.group}: no longer held by its dead letter; the messages behind it are handled next.`
          : `Released ${key} of group ${released.group}: parked message ${released.id} is attempted now.`,
      );
    });

  parked
    .command('discard')
    .description(
      'Discard one parked message: it is not attempted, and the next of its key comes due. One that waited is kept on record as a ' +
        'discarded dead letter; one held by its dead letter leaves that dead letter open',
    )
    .argument('<id>', 'the parked message id')
    .addOption(databaseUrlOption())
    .action(async (id: string, flags: ConnectionFlags) => {
      const discarded = await withPostbox(flags, context.env, (postbox) => postbox.parked.discard(id));
      await context.out.line(`Discarded parked message ${discarded.id} (message ${discarded.messageId}) of group ${discarded.group}.`);
    });
}
