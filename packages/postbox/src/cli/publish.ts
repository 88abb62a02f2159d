import type { Command } from 'commander';
import { ValidationError } from '../errors/postbox-error.js';
import type { OutgoingMessage } from '../outbox/outgoing-message.js';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';
import { duration, header, positiveInteger, timeWithZone } from './options.js';

interface PublishFlags extends ConnectionFlags {
  topic: string;
  type: string;
  key?: string;
  payload: string;
  header?: [string, string][];
  traceId?: string;
  userId?: string;
  schemaVersion?: number;
  deliverAt?: Date;
  delay?: number;
}

export function parsePayload(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ValidationError('POSTBOX_ERR_PAYLOAD_NOT_JSON', `--payload is not valid JSON: ${(error as Error).message}.`, {
      option: '--payload',
    });
  }
}

export function registerPublish(program: Command, context: CliContext): void {
  program
    .command('publish')
    .description('Publish one message through the outbox and print its id; with --deliver-at or --delay it waits for its time')
    .requiredOption('--topic <topic>', 'topic to publish to')
    .requiredOption('--type <type>', 'message type, such as order.created')
    .option('--key <key>', 'partition key; messages with one key are read in order')
    .requiredOption('--payload <json>', 'the payload, as JSON')
    .option('--header <name=value>', 'a custom header; repeat for more', header)
    .option('--trace-id <id>', 'trace id header')
    .option('--user-id <id>', 'user id header')
    .option('--schema-version <n>', 'schema version of the payload (default: 1)', positiveInteger)
    .option('--deliver-at <time>', 'deliver no earlier than this time, with its zone (2025-11-10T09:00:00Z)', timeWithZone)
    .option('--delay <duration>', 'deliver no earlier than this long from now, such as 90s or 15m', duration)
    .addOption(databaseUrlOption())
    .action(async (options: PublishFlags) => {
      const message: OutgoingMessage = {
        topic: options.topic,
        type: options.type,
        key: options.key ?? null,
        payload: parsePayload(options.payload),
        traceId: options.traceId,
        userId: options.userId,
        schemaVersion: options.schemaVersion,
        headers: Object.fromEntries(options.header ?? []),
        deliverAt: options.deliverAt,
        delayMs: options.delay,
      };
      const [id] = await withPostbox(options, context.env, (postbox) => postbox.publish(message));
      await context.out.line(id ?? '');
    });
}
