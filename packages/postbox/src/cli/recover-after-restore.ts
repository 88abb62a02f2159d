import { type Command, Option } from 'commander';
import { defaults } from '../config/defaults.js';
import {
  planRecoveryAfterRestore,
  type RecoveryPlan,
  type RecoveryProgress,
  type RecoveryResult,
  recoverAfterRestore,
} from '../log/recover-after-restore.js';
import { describeStoredTransactionId } from '../log/stored-transaction-id.js';
import { plural } from '../text/plural.js';
import { type ConnectionFlags, databaseUrlOption, withPostbox } from './connect.js';
import type { CliContext } from './context.js';
import { duration } from './options.js';
import { table, toJson } from './output.js';

interface RecoverFlags extends ConnectionFlags {
  dryRun?: boolean;
  wait?: number | true;
  json?: boolean;
}

function nothingToDo(plan: RecoveryPlan): string {
  const highest = plan.check.highestStored;
  const stored = highest ? `highest stored: ${highest.value}, in ${describeStoredTransactionId(highest)}` : 'the log stores none yet';
  return `Nothing to do: the next transaction id of this server (${plan.check.nextTransactionId}) is above every id the log stores (${stored}).`;
}

function describePlan(plan: RecoveryPlan, verb: 'Would change' | 'Changed'): string {
  const remap = plan.remap;
  if (!plan.needed || !remap || plan.check.status !== 'behind') return nothingToDo(plan);
  const highest = plan.check.highestStored;
  const rows: [string, string][] = [
    ['log rows', `${remap.restoredRows} restored (${plural(remap.restoredTransactions, 'transaction')})`],
    [
      '',
      `${remap.rowsWrittenHere} written on this server since the restore (${plural(remap.transactionsWrittenHere, 'transaction')}), placed after every restored row`,
    ],
    ['checkpoints', String(remap.checkpoints)],
    ['start snapshots', String(remap.startSnapshots)],
    ['dead letters', String(remap.deadLetters)],
    ['parked messages', String(remap.parkedMessages)],
    [
      'new ids',
      remap.lowestNewId === null
        ? '-'
        : `${remap.lowestNewId} to ${remap.highestNewId} (global positions and the order of every message stay as they are)`,
    ],
  ];
  if (verb === 'Would change') {
    rows.push([
      'ids to use up',
      `${plan.transactionIdsToUseUp} (the server's next id must pass ${remap.highestNewId ?? 0}), and up to ${defaults.recovery.transactionIdMargin} more for transactions that start meanwhile`,
    ]);
  }
  const lines = [
    verb === 'Changed'
      ? `The log held transaction ids up to ${highest.value} (in ${describeStoredTransactionId(highest)}), ahead of this server's.`
      : `The next transaction id of this server is ${plan.check.nextTransactionId}, but ${describeStoredTransactionId(highest)} holds ${highest.value}.`,
    `${verb}:`,
    table(['WHAT', 'COUNT'], rows),
  ];
  if (plan.otherColumns.length > 0) {
    lines.push(`Transaction-id columns outside the Postbox schema, left as they are: ${plan.otherColumns.join(', ')}.`);
  }
  return lines.join('\n');
}

function describeResult(result: RecoveryResult): string {
  if (!result.recovered) return nothingToDo(result.plan);
  const rate = result.usedUpPerSecond === null ? '' : ` at ${result.usedUpPerSecond}/s`;
  return [
    describePlan(result.plan, 'Changed'),
    `Used up ${plural(result.transactionIdsUsedUp, 'transaction id')}${rate}; the next id is now ${result.after.nextTransactionId}.`,
    `Recovered in ${(result.elapsedMs / 1_000).toFixed(1)}s. Consumer groups can start again.`,
  ].join('\n');
}

function progressNotice(progress: RecoveryProgress): string {
  switch (progress.phase) {
    case 'waiting':
      return `waiting: ${progress.reason}`;
    case 'transaction-ids':
      return `used up ${progress.usedUp} transaction ids (${progress.remaining} to go, ${progress.perSecond}/s)`;
    case 'remapping':
      return `remapping ${progress.remap.restoredRows + progress.remap.rowsWrittenHere} rows and ${progress.remap.checkpoints} checkpoints under lock`;
  }
}

export function registerRecoverAfterRestore(program: Command, context: CliContext): void {
  program
    .command('recover-after-restore')
    .description(
      "After a pg_dump restore or a cut-over to another server, whose transaction ids are lower than the log's: bring the log, " +
        "every checkpoint, start snapshot, dead letter and parked message onto this server's ids, losing and reordering nothing. Stop the processes " +
        'that run consumer groups first. Does nothing on a healthy database',
    )
    .option('--dry-run', 'print what would change, and change nothing')
    .addOption(
      new Option(
        '--wait [duration]',
        `wait for running groups, older open transactions and locks to end instead of refusing (${defaults.recovery.waitMs / 60_000}m without a duration)`,
      ).argParser(duration),
    )
    .option('--json', 'print JSON')
    .addOption(databaseUrlOption())
    .action(async (flags: RecoverFlags) => {
      const waitMs = flags.wait === true ? defaults.recovery.waitMs : (flags.wait ?? 0);
      await withPostbox(flags, context.env, async (postbox) => {
        if (flags.dryRun) {
          const plan = await planRecoveryAfterRestore(postbox.db);
          await context.out.line(flags.json ? toJson(plan, true) : `${describePlan(plan, 'Would change')}\nNothing was changed (dry run).`);
          return;
        }
        // Notices are written in order, and all of them before the result.
        let notices = Promise.resolve();
        const result = await recoverAfterRestore(postbox.db, {
          waitMs,
          onProgress: (progress) => {
            notices = notices.then(() => context.out.notice(progressNotice(progress))).catch(() => undefined);
          },
        }).finally(() => notices);
        await context.out.line(flags.json ? toJson(result, true) : describeResult(result));
      });
    });
}
