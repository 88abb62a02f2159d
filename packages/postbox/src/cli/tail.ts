import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { type Command, Option } from 'commander';
import { defaults } from '../config/defaults.js';
import { planAssignment } from '../consumers/assignment.js';
import {
  acquirePartitions,
  commitCheckpoint,
  ensureGroup,
  heartbeat,
  type LeasedPartition,
  leaveGroup,
  releasePartition,
  type StartFrom,
} from '../consumers/group-store.js';
import { Wakeup } from '../consumers/wakeup.js';
import { LeaseLostError } from '../errors/postbox-error.js';
import { readAfter } from '../log/read.js';
import { assertTransactionIdsCurrent } from '../log/transaction-ids.js';
import type { Database } from '../sql/database.js';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';
import { CliError } from './errors.js';
import { jsonLine, readableLine } from './message-format.js';
import { collect, positiveInteger, seconds } from './options.js';

interface TailFlags extends ConnectionFlags {
  topic: string[];
  group: string;
  from: StartFrom;
  partitions: number;
  limit?: number;
  timeout: number;
  json?: boolean;
}

export function registerTail(program: Command, context: CliContext): void {
  program
    .command('tail')
    .description(
      "Read messages as a consumer group, print them, and commit the group's checkpoint for exactly what was printed. " +
        'Exits after --limit messages, or once no new message arrived for --timeout.',
    )
    .addOption(new Option('--topic <topic>', 'topic to read; repeat for more').argParser(collect).makeOptionMandatory())
    .requiredOption('--group <name>', 'consumer group to read as; created if new')
    .addOption(new Option('--from <where>', 'where a new group starts').choices(['earliest', 'latest']).default('earliest'))
    .addOption(
      new Option('--partitions <n>', 'partitions of a new group (an existing group must have as many)')
        .argParser(positiveInteger)
        .default(1),
    )
    .option('--limit <n>', 'exit after printing this many messages', positiveInteger)
    .addOption(
      new Option('--timeout <seconds>', 'exit after this long without a new message (seconds, or a duration such as 500ms)')
        .argParser(seconds)
        .default(5_000, '5'),
    )
    .option('--json', 'print NDJSON, one message per line')
    .addOption(databaseUrlOption())
    .action(async (options: TailFlags) => {
      context.exitCode = await withPostbox(options, context.env, (postbox) => tail(postbox.db, options, context));
    });
}

async function tail(db: Database, options: TailFlags, context: CliContext): Promise<number> {
  const group = options.group;
  const topics = [...new Set(options.topic)];
  const owner = `postbox-cli@${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const leaseTtlMs = defaults.consumer.leaseTtlMs;
  const format = options.json ? jsonLine : readableLine;
  await assertTransactionIdsCurrent(db);
  await ensureGroup(db, { name: group, topics, startFrom: options.from, ephemeral: false, partitions: options.partitions });

  const wakeup = new Wakeup();
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    wakeup.wake();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const wanted = new Set(topics);
  const unlisten = await db.listen(defaults.notifyChannel, (topic) => {
    if (wanted.has(topic)) wakeup.wake();
  });

  // tail is a member of the group like any process running it: it takes its share of the partitions.
  const held = new Map<number, LeasedPartition>();
  let printed = 0;
  let idleSince = Date.now();
  let toldBusy = false;
  try {
    while (!interrupted) {
      wakeup.consume();
      const view = await heartbeat(db, group, owner, leaseTtlMs);
      for (const partition of held.keys()) if (!view.held.includes(partition)) held.delete(partition);
      const plan = planAssignment({ partitions: options.partitions, members: view.members, owners: view.owners, me: owner });
      for (const partition of plan.release) {
        await releasePartition(db, group, owner, partition);
        held.delete(partition);
      }
      for (const lease of await acquirePartitions(db, group, owner, leaseTtlMs, plan.acquire, plan.acquireCount)) {
        held.set(lease.partition, lease);
      }
      if (held.size === 0 && !toldBusy) {
        toldBusy = true;
        const owners = [...new Set(view.owners.values())].join(', ') || 'another process';
        await context.out.notice(
          `group ${group} is leased by another process (${owners}); waiting for it for up to ${options.timeout / 1000}s.`,
        );
      } else if (held.size > 0 && toldBusy) {
        toldBusy = false;
        await context.out.notice(`took the lease of group ${group}.`);
      }
      let full = false;
      for (const lease of held.values()) {
        const size = Math.min(
          options.limit === undefined ? Number.POSITIVE_INFINITY : options.limit - printed,
          defaults.consumer.batchSize,
        );
        const messages = await readAfter(db, {
          topics,
          after: lease.checkpoint,
          limit: size,
          skipVisibleIn: lease.skipVisibleIn,
          partition: { index: lease.partition, count: options.partitions },
        });
        const last = messages.at(-1);
        if (!last) continue;
        // Print first, then commit: a failed write leaves the checkpoint behind what was printed, never ahead.
        for (const message of messages) await context.out.line(format(message));
        const position = { transactionId: last.transactionId, globalPosition: last.globalPosition };
        if (!(await commitCheckpoint(db, group, lease.partition, owner, position, leaseTtlMs))) {
          throw new LeaseLostError(
            'POSTBOX_ERR_LEASE_LOST',
            `Another process took group ${group}; the last ${messages.length} printed messages were not committed and will be read again.`,
          );
        }
        lease.checkpoint = position;
        printed += messages.length;
        idleSince = Date.now();
        if (printed === options.limit) break;
        if (messages.length === size) full = true;
      }
      if (printed === options.limit) break;
      if (full) continue;
      const remaining = idleSince + options.timeout - Date.now();
      if (remaining <= 0) {
        if (toldBusy) {
          throw new CliError(
            'POSTBOX_ERR_GROUP_BUSY',
            `Group ${group} stayed leased by another process for ${options.timeout / 1000}s; gave up.`,
          );
        }
        break;
      }
      await wakeup.wait(Math.min(remaining, defaults.consumer.pollIntervalMs));
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await unlisten().catch(() => undefined);
    for (const partition of held.keys()) await releasePartition(db, group, owner, partition).catch(() => undefined);
    await leaveGroup(db, group, owner).catch(() => undefined);
  }
  return interrupted ? 130 : 0;
}
