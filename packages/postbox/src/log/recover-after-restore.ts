import { setTimeout as sleep } from 'node:timers/promises';
import { defaults } from '../config/defaults.js';
import { PostboxError, ValidationError } from '../errors/postbox-error.js';
import type { Database, Executor } from '../sql/database.js';
import { applyRemap, planRemap, type RemapPlan, unmappedTransactionIdColumns } from './transaction-id-remap.js';
import { advanceTransactionIdsPast, nextTransactionIdSql } from './transaction-id-supply.js';
import { checkTransactionIds, type TransactionIdCheck } from './transaction-ids.js';
import { describeHolder, watermarkHolders } from './watermark.js';

/** What a recovery would change; `needed` is false on a database whose ids are current. */
export interface RecoveryPlan {
  needed: boolean;
  check: TransactionIdCheck;
  /** The remap, when needed. */
  remap: RemapPlan | null;
  /** Ids the server must use up first, so that its next id is above every remapped one. */
  transactionIdsToUseUp: bigint;
  /** Transaction-id columns outside the Postbox schema: the recovery leaves them as they are. */
  otherColumns: string[];
}

export interface RecoveryResult {
  /** False when there was nothing to do. */
  recovered: boolean;
  /** What was changed, as planned under the recovery's locks (or the plan that found nothing to do). */
  plan: RecoveryPlan;
  transactionIdsUsedUp: bigint;
  /** How fast the server's ids were used up, when any were. */
  usedUpPerSecond: number | null;
  elapsedMs: number;
  /** The check once the recovery committed. */
  after: TransactionIdCheck;
}

export type RecoveryProgress =
  | { phase: 'waiting'; reason: string }
  | { phase: 'transaction-ids'; usedUp: bigint; remaining: bigint; perSecond: number }
  | { phase: 'remapping'; remap: RemapPlan };

export interface RecoveryOptions {
  /** How long to wait for running groups, older open transactions and locks; 0 (the default) refuses at once. */
  waitMs?: number;
  /** How long to wait for the locks on the Postbox tables before stepping back. */
  lockTimeoutMs?: number;
  onProgress?: (progress: RecoveryProgress) => void;
}

/** The tables the remap changes or that readers and writers of the log touch, locked against both. */
const lockSql =
  'lock table postbox.consumer_groups, postbox.group_partitions, postbox.group_members, postbox.dead_letters, postbox.parked_messages, ' +
  'postbox.messages in access exclusive mode';

async function planIn(tx: Executor): Promise<RecoveryPlan> {
  const check = await checkTransactionIds(tx);
  const otherColumns = await unmappedTransactionIdColumns(tx);
  if (check.status === 'ok') return { needed: false, check, remap: null, transactionIdsToUseUp: 0n, otherColumns };
  const remap = await planRemap(tx);
  const highest = remap.highestNewId ?? 0n;
  const transactionIdsToUseUp = highest >= remap.nextTransactionId ? highest - remap.nextTransactionId + 1n : 0n;
  return { needed: true, check, remap, transactionIdsToUseUp, otherColumns };
}

/** What a recovery would change, without changing anything (its working tables are temporary). */
export function planRecoveryAfterRestore(db: Database): Promise<RecoveryPlan> {
  return db.transaction(planIn);
}

type Attempt =
  | { kind: 'recovered'; plan: RecoveryPlan; after: TransactionIdCheck }
  | { kind: 'not-needed'; plan: RecoveryPlan }
  | { kind: 'more-ids' }
  | { kind: 'blocked'; error: PostboxError };

/** The next id the server assigns, and the oldest one still running (the next when none is). */
async function transactionHorizon(tx: Executor): Promise<{ next: bigint; oldestRunning: bigint }> {
  const { rows } = await tx.query<{ next: string; oldest: string }>(
    `select ${nextTransactionIdSql}::text as next, pg_snapshot_xmin(pg_current_snapshot())::text as oldest`,
  );
  const row = rows[0] as { next: string; oldest: string };
  return { next: BigInt(row.next), oldestRunning: BigInt(row.oldest) };
}

async function runningGroups(tx: Executor): Promise<string[]> {
  const { rows } = await tx.query<{ group_name: string }>(
    `select group_name from postbox.group_partitions where lease_expires_at > now()
     union
     select group_name from postbox.group_members where expires_at > now()
     order by 1`,
  );
  return rows.map((row) => row.group_name);
}

function groupsBusy(groups: string[]): PostboxError {
  return new PostboxError(
    'POSTBOX_ERR_GROUP_BUSY',
    `Consumer groups are running: ${groups.join(', ')}. Stop every process that runs them (a stopped process's lease ends within its lease time), then recover again, or let the recovery wait (--wait, or the waitMs option).`,
    { groups },
  );
}

/**
 * A transaction older than the remapped range could still write messages with an id below the
 * range once the recovery has committed, and readers past it would skip them.
 */
async function olderTransactionOpen(tx: Executor, highest: bigint): Promise<PostboxError> {
  const holder = (await watermarkHolders(tx)).find((candidate) => candidate.holdsWatermark);
  return new PostboxError(
    'POSTBOX_ERR_RECOVERY_BLOCKED',
    `A transaction that began before the recovery is still open${holder ? `: ${describeHolder(holder)}` : ''}. Messages it writes would take an id at or below ${highest} and sort before the recovered log; end it, then recover again, or let the recovery wait (--wait, or the waitMs option).`,
    { highestNewId: String(highest) },
  );
}

/**
 * The remap itself, all or nothing: under locks that stop readers and writers of the log, with no
 * group running, planned afresh and written only when the server's ids are already past the new
 * range and no transaction older than them is open.
 */
async function remapUnderLocks(db: Database, options: Required<Omit<RecoveryOptions, 'onProgress'>> & RecoveryOptions): Promise<Attempt> {
  try {
    return await db.transaction(async (tx): Promise<Attempt> => {
      await tx.query(`select set_config('lock_timeout', $1, true)`, [`${Math.round(options.lockTimeoutMs)}ms`]);
      await tx.query(lockSql);
      const running = await runningGroups(tx);
      if (running.length > 0) return { kind: 'blocked', error: groupsBusy(running) };
      const plan = await planIn(tx);
      if (!plan.needed || !plan.remap) return { kind: 'not-needed', plan };
      const highest = plan.remap.highestNewId ?? 0n;
      const horizon = await transactionHorizon(tx);
      if (horizon.next <= highest) return { kind: 'more-ids' };
      if (horizon.oldestRunning <= highest) return { kind: 'blocked', error: await olderTransactionOpen(tx, highest) };
      options.onProgress?.({ phase: 'remapping', remap: plan.remap });
      await applyRemap(tx, plan.remap);
      const after = await checkTransactionIds(tx);
      if (after.status !== 'ok') {
        throw new PostboxError(
          'POSTBOX_ERR_UNEXPECTED',
          `The remapped log still holds transaction id ${after.highestStored.value}, at or above the next id ${after.nextTransactionId}; nothing was changed.`,
        );
      }
      return { kind: 'recovered', plan, after };
    });
  } catch (error) {
    if ((error as { code?: unknown }).code !== '55P03') throw error;
    return {
      kind: 'blocked',
      error: new PostboxError(
        'POSTBOX_ERR_RECOVERY_BLOCKED',
        `Another transaction held a lock on the Postbox tables for over ${options.lockTimeoutMs} ms. Recover again once it has ended, or let the recovery wait (--wait, or the waitMs option).`,
        {},
        { cause: error },
      ),
    };
  }
}

function checkOptions(options: RecoveryOptions): Required<Omit<RecoveryOptions, 'onProgress'>> & RecoveryOptions {
  const waitMs = options.waitMs ?? 0;
  const lockTimeoutMs = options.lockTimeoutMs ?? defaults.recovery.lockTimeoutMs;
  for (const [name, value, least] of [
    ['waitMs', waitMs, 0],
    ['lockTimeoutMs', lockTimeoutMs, 1],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < least) {
      throw new ValidationError(
        'POSTBOX_ERR_BAD_OPTION',
        `${name} must be a whole number of milliseconds, at least ${least} (got ${String(value)}).`,
        {
          option: name,
        },
      );
    }
  }
  return { ...options, waitMs, lockTimeoutMs };
}

/**
 * Brings the log and every stored position (checkpoints, start snapshots, dead letters, parked
 * messages) onto this server's transaction ids after a restore or a cut-over from another server,
 * losing and reordering nothing (see transaction-id-remap.ts), once the server's next id is above
 * them all. Refuses while a consumer group runs, unless told to wait. Does nothing, and says so,
 * when the ids are current.
 */
export async function recoverAfterRestore(db: Database, options: RecoveryOptions = {}): Promise<RecoveryResult> {
  const settings = checkOptions(options);
  const started = performance.now();
  const deadline = started + settings.waitMs;
  let usedUp = 0n;
  let usedUpMs = 0;
  const finish = (recovered: boolean, plan: RecoveryPlan, after: TransactionIdCheck): RecoveryResult => ({
    recovered,
    plan,
    transactionIdsUsedUp: usedUp,
    usedUpPerSecond: usedUp > 0n && usedUpMs > 0 ? Math.round(Number(usedUp) / (usedUpMs / 1_000)) : null,
    elapsedMs: performance.now() - started,
    after,
  });
  let rounds = 0;
  const waitOrRefuse = async (error: PostboxError): Promise<void> => {
    if (performance.now() + defaults.recovery.pollIntervalMs > deadline) throw error;
    settings.onProgress?.({ phase: 'waiting', reason: error.message });
    await sleep(defaults.recovery.pollIntervalMs);
  };
  for (;;) {
    // A database whose ids are current has nothing to do, whatever runs on it (the plan says so cheaply).
    if ((await checkTransactionIds(db)).status === 'ok') {
      const current = await planRecoveryAfterRestore(db);
      if (!current.needed) return finish(false, current, current.check);
    }
    // Asked without locks, so that a recovery that must wait neither plans nor uses up ids meanwhile.
    const running = await runningGroups(db);
    if (running.length > 0) {
      await waitOrRefuse(groupsBusy(running));
      continue;
    }
    const plan = await planRecoveryAfterRestore(db);
    if (!plan.needed || !plan.remap) return finish(false, plan, plan.check);
    // Messages written while the recovery waits for its locks take new ids too: a margin spares a round.
    const highest = (plan.remap.highestNewId ?? 0n) + BigInt(defaults.recovery.transactionIdMargin);
    const advance = await advanceTransactionIdsPast(db, highest, (progress) =>
      settings.onProgress?.({
        phase: 'transaction-ids',
        usedUp: usedUp + progress.usedUp,
        remaining: progress.remaining,
        perSecond: progress.elapsedMs > 0 ? Math.round(Number(progress.usedUp) / (progress.elapsedMs / 1_000)) : 0,
      }),
    );
    usedUp += advance.usedUp;
    usedUpMs += advance.elapsedMs;
    const attempt = await remapUnderLocks(db, settings);
    if (attempt.kind === 'recovered') return finish(true, attempt.plan, attempt.after);
    if (attempt.kind === 'not-needed') return finish(false, attempt.plan, attempt.plan.check);
    if (attempt.kind === 'blocked') {
      await waitOrRefuse(attempt.error);
      continue;
    }
    rounds += 1;
    if (rounds >= defaults.recovery.maxAttempts) {
      throw new PostboxError(
        'POSTBOX_ERR_RECOVERY_BLOCKED',
        `Messages kept being written faster than the recovery could make room for their ids (${rounds} rounds). Stop the writers for a moment and recover again.`,
      );
    }
  }
}
