import { setTimeout as sleep } from 'node:timers/promises';
import { validate as isUuid } from 'uuid';
import { defaults } from '../config/defaults.js';
import { deadLetterCounts } from '../deadletters/dead-letter-store.js';
import { PostboxError, ValidationError } from '../errors/postbox-error.js';
import { comparePositions, type LogPosition } from '../log/position.js';
import { findMessage, type ReadStart, startAtLatest, startAtPosition, startAtTime, startOfLog } from '../log/read-start.js';
import { countStartChange } from '../log/start-change.js';
import { assertTransactionIdsCurrent } from '../log/transaction-ids.js';
import type { Database, Executor } from '../sql/database.js';
import { type GroupToChange, groupBusyError, isInUse, moveGroupStart, readGroupsToChange } from './group-change.js';
import { checkGroupName } from './group-store.js';

/**
 * Where a reset moves a group:
 * - `earliest`: every message still in the log of its topics;
 * - `latest`: what commits from now on, and the transactions still open when they commit;
 * - `{ time }`: the messages committed from that time on, by the rule of startAtTime;
 * - `{ messageId }`: that message first, then everything after it in the group's read order.
 */
export type ResetTarget = 'earliest' | 'latest' | { time: Date } | { messageId: string };

export interface ResetGroupsOptions {
  groups: readonly string[];
  to: ResetTarget;
  /** Computes the report and changes nothing; it neither waits for a group in use nor refuses one (see heldBy). */
  dryRun?: boolean;
  /**
   * While a process runs one of the groups, wait for it to stop (true: defaults.groupReset.waitMs;
   * a number: that many milliseconds) instead of refusing at once with POSTBOX_ERR_GROUP_BUSY.
   */
  wait?: boolean | number;
}

export interface ResetGroupOptions extends Omit<ResetGroupsOptions, 'groups'> {
  group: string;
}

export interface PartitionReset {
  partition: number;
  /** Where the partition read from before, and reads from after (strictly after, in read order). */
  from: LogPosition;
  to: LogPosition;
  /** Committed messages it had passed and will read again. */
  readAgain: number;
  /** Committed messages it had still to read and will not. */
  skipped: number;
}

export interface GroupReset {
  group: string;
  topics: string[];
  to: ResetTarget;
  /** True when nothing was changed. */
  dryRun: boolean;
  /** One per partition (one for a group that is not partitioned). */
  partitions: PartitionReset[];
  readAgain: number;
  skipped: number;
  /** Rows of the transactions visible in this snapshot are left out from the new start; null for none. */
  skipVisibleIn: string | null;
  /**
   * The group's dead letters still open (pending, or asked to be retried). A reset leaves them as
   * they are: they stay listed, and those being retried are still redelivered to the group.
   */
  openDeadLetters: number;
  /** The processes running the group when a dry run looked: a real reset would refuse (or wait) while there are any. */
  heldBy: string[];
}

interface ResetRequest {
  groups: string[];
  to: ResetTarget;
  dryRun: boolean;
  waitMs: number;
}

function describeTarget(to: unknown): string {
  return to instanceof Object ? JSON.stringify(to) : String(to);
}

function checkTarget(to: unknown): ResetTarget {
  if (to === 'earliest' || to === 'latest') return to;
  if (to instanceof Object && 'time' in to && to.time instanceof Date && !Number.isNaN(to.time.getTime())) {
    return { time: new Date(to.time.getTime()) };
  }
  if (to instanceof Object && 'messageId' in to && typeof to.messageId === 'string' && isUuid(to.messageId)) {
    return { messageId: to.messageId.toLowerCase() };
  }
  throw new ValidationError(
    'POSTBOX_ERR_BAD_OPTION',
    `A reset goes to 'earliest', 'latest', { time: <a valid Date> } or { messageId: <a UUID> } (got ${describeTarget(to).slice(0, 100)}).`,
    { option: 'to' },
  );
}

function checkWait(wait: unknown): number {
  if (wait === undefined || wait === false) return 0;
  if (wait === true) return defaults.groupReset.waitMs;
  if (typeof wait === 'number' && Number.isSafeInteger(wait) && wait > 0) return wait;
  throw new ValidationError(
    'POSTBOX_ERR_BAD_OPTION',
    `wait must be true, false or a positive whole number of milliseconds (got ${String(wait)}).`,
    {
      option: 'wait',
    },
  );
}

function checkRequest(options: ResetGroupsOptions): ResetRequest {
  if (!Array.isArray(options.groups) || options.groups.length === 0) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'Name at least one group to reset.', { option: 'groups' });
  }
  const waitMs = checkWait(options.wait);
  return {
    groups: [...new Set(options.groups.map(checkGroupName))].sort(),
    to: checkTarget(options.to),
    dryRun: options.dryRun === true,
    waitMs: options.dryRun === true ? 0 : waitMs,
  };
}

/** The message a reset by id starts at, checked against every group's topics. */
async function messageStart(db: Executor, messageId: string, groups: readonly GroupToChange[]): Promise<ReadStart> {
  const found = await findMessage(db, messageId);
  if (!found) {
    throw new PostboxError(
      'POSTBOX_ERR_MESSAGE_NOT_FOUND',
      `No committed message in the log has the id ${messageId} (retention may have removed it, or its transaction has not committed).`,
      { messageId },
    );
  }
  const stranger = groups.find((group) => !group.topics.includes(found.topic));
  if (stranger) {
    throw new PostboxError(
      'POSTBOX_ERR_MESSAGE_NOT_IN_GROUP',
      `Message ${messageId} is of topic ${JSON.stringify(found.topic)}, which group ${stranger.name} does not read (it reads ${JSON.stringify(stranger.topics)}).`,
      { messageId, topic: found.topic, group: stranger.name },
    );
  }
  return startAtPosition(found.position);
}

async function report(
  db: Executor,
  group: GroupToChange,
  request: ResetRequest,
  start: ReadStart,
  deadLetters: number,
): Promise<GroupReset> {
  const changes = await countStartChange(db, {
    topics: group.topics,
    partitions: group.partitions,
    from: group.checkpoints,
    fromSkipVisibleIn: group.startSnapshot,
    to: start,
  });
  const partitions = group.checkpoints.map((checkpoint) => {
    const change = changes.find((entry) => entry.partition === checkpoint.partition);
    return {
      partition: checkpoint.partition,
      from: checkpoint.after,
      to: start.after,
      readAgain: change?.readAgain ?? 0,
      skipped: change?.skipped ?? 0,
    };
  });
  return {
    group: group.name,
    topics: group.topics,
    to: request.to,
    dryRun: request.dryRun,
    partitions,
    readAgain: partitions.reduce((sum, partition) => sum + partition.readAgain, 0),
    skipped: partitions.reduce((sum, partition) => sum + partition.skipped, 0),
    skipVisibleIn: start.skipVisibleIn,
    openDeadLetters: deadLetters,
    heldBy: request.dryRun ? group.holders : [],
  };
}

/** What a reset applies, and reports: the groups as they were read, the new start, the report. */
interface Plan {
  groups: GroupToChange[];
  start: ReadStart;
  results: GroupReset[];
}

/** Whether a group still reads from where the plan saw it. */
function unchanged(seen: GroupToChange | undefined, now: GroupToChange): boolean {
  return (
    seen !== undefined &&
    seen.partitions === now.partitions &&
    seen.startSnapshot === now.startSnapshot &&
    seen.topics.join('\u0000') === now.topics.join('\u0000') &&
    seen.checkpoints.length === now.checkpoints.length &&
    seen.checkpoints.every((checkpoint, index) => {
      const other = now.checkpoints[index];
      return other !== undefined && other.partition === checkpoint.partition && comparePositions(other.after, checkpoint.after) === 0;
    })
  );
}

/**
 * The plan, read without locks and without a transaction id of its own, so that counting the
 * messages of a long log neither blocks the group's members nor holds back the log's readers.
 * A group that a process runs is returned at once, before any scan of the log.
 */
async function plan(db: Executor, request: ResetRequest): Promise<Plan | { busy: GroupToChange }> {
  const groups = await readGroupsToChange(db, request.groups, { lock: false });
  const byId =
    typeof request.to === 'object' && 'messageId' in request.to ? await messageStart(db, request.to.messageId, groups) : undefined;
  const busy = request.dryRun ? undefined : groups.find((group) => group.holders.length > 0);
  if (busy) return { busy };
  let start: ReadStart;
  if (byId) start = byId;
  else if (request.to === 'earliest') start = startOfLog;
  else if (request.to === 'latest') start = await startAtLatest(db);
  else start = await startAtTime(db, (request.to as { time: Date }).time);
  const deadLetters = await deadLetterCounts(db);
  const results: GroupReset[] = [];
  for (const group of groups) {
    const open = deadLetters.filter((entry) => entry.group === group.name).reduce((sum, entry) => sum + entry.count, 0);
    results.push(await report(db, group, request, start, open));
  }
  return { groups, start, results };
}

/**
 * Applies a plan in the caller's transaction: every group's rows locked, checked free and still
 * where the plan saw them, then moved. Returns the first group in use (nothing moved), else undefined.
 */
async function apply(tx: Executor, request: ResetRequest, planned: Plan): Promise<GroupToChange | undefined> {
  const groups = await readGroupsToChange(tx, request.groups, { lock: true });
  const busy = groups.find((group, index) => isInUse(group) || !unchanged(planned.groups[index], group));
  if (busy) return busy;
  for (const group of groups) await moveGroupStart(tx, group.name, planned.start);
  return undefined;
}

/**
 * Moves consumer groups to read from another place in the log, all of them or none, while no
 * process runs them: the check and the move happen in one transaction that holds the groups' rows,
 * so no member can join in between. Every partition moves to the same start. Dead letters are left
 * as they are. Returns, per group and partition, the old and new position and how many committed
 * messages it will read again or skip.
 */
export async function resetGroups(db: Database, options: ResetGroupsOptions): Promise<GroupReset[]> {
  const request = checkRequest(options);
  // On a log restored from another server, positions of this server's ids would mean nothing.
  await assertTransactionIdsCurrent(db);
  const began = Date.now();
  for (;;) {
    const planned = await plan(db, request);
    let busy: GroupToChange | undefined;
    if ('busy' in planned) busy = planned.busy;
    else if (request.dryRun) return planned.results;
    else {
      busy = await db.transaction((tx) => apply(tx, request, planned));
      if (!busy) return planned.results;
    }
    const waited = Date.now() - began;
    if (waited >= request.waitMs) throw groupBusyError(busy, 'reset', request.waitMs > 0 ? waited : undefined);
    await sleep(Math.min(defaults.groupReset.pollIntervalMs, request.waitMs - waited));
  }
}

/** resetGroups for one group. */
export async function resetGroup(db: Database, options: ResetGroupOptions): Promise<GroupReset> {
  const { group, ...rest } = options;
  const [result] = await resetGroups(db, { ...rest, groups: [group] });
  return result as GroupReset;
}
