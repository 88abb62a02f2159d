import { Postbox, partitionOf } from 'postbox';
import type { Scenario, ScenarioOutcome } from '../scenario.js';
import { type ChildHandle, ProcessGroup, processEntry } from '../support/child-process.js';
import {
  describeGroupRow,
  describeOldestTransaction,
  serverNow,
  waitForCatchUp,
  waitUnlessHeldBack,
} from '../support/consumer-group-row.js';
import { countDeliveries } from '../support/delivery-count.js';
import { describeDurations } from '../support/durations.js';
import { countEffects, createBatchEffectsTables } from '../support/effects-table.js';
import { KeySequenceCheck } from '../support/key-sequence-check.js';
import { createWriterTables, writerTotals } from '../support/ordered-writer-totals.js';
import {
  type BatchSpan,
  batchCounts,
  effectsInHandleOrder,
  firstBatchesAfter,
  type Holder,
  holderElsewhere,
  longestQuietSpellMs,
  memberJoinedAt,
  overlappingBatches,
  partitionOwners,
} from '../support/partition-batches.js';
import { delay, randomBetween, waitFor } from '../support/wait.js';

const topic = 'chaos-rebalance';
const group = 'chaos-rebalance';
const partitions = 8;
const leaseTtlMs = 1_000;
const shutdownDeadlineMs = 5_000;
const initialMembers = 3;
/** The faults in turn, from 3 members: the count goes 2, 3, 2, 3, 2, 1, 2, 3, and again. */
const cycle = ['kill', 'add', 'term', 'add', 'kill', 'term', 'add', 'add'] as const;
type Fault = (typeof cycle)[number];

const settings = {
  full: { faults: 24, messagesPerSecond: 1_000, keys: 200, gapMs: [1_000, 3_000] },
  reduced: { faults: 4, messagesPerSecond: 400, keys: 100, gapMs: [300, 800] },
} as const;
const writers = 8;
const maxPerTransaction = 40;
const maxTransactionMs = 200;
const rollbackRate = 0.05;
const batchSize = 100;
const workMs = 20;
const startTimeoutMs = 60_000;
const recoveryTimeoutMs = 30_000;
// The visibility watermark is server-wide: a long transaction in another database holds these readers back too.
const heldBackTimeoutMs = 300_000;
/** How long a member asked for a kill -9 inside a batch may take to reach one before it is killed from outside. */
const midBatchWaitMs = 3_000;
/**
 * A recovery counts as held back by a transaction in another database when one older than the fault
 * was open this long while it ran, and the partitions the fault did not move stalled as long too.
 */
const heldBackSeconds = 0.5;

interface Member {
  name: string;
  handle: ChildHandle;
}

interface FaultRecord {
  fault: Fault;
  member: string;
  /** The partitions the fault moved, each with its owner before the fault. */
  moved: Map<number, string | null>;
  /** From the fault to the end of the first committed batch of the last of the partitions it moved. */
  recoveryMs: number | undefined;
  /** That last batch: its partition, and when its transaction began, from the fault. */
  last?: { partition: number; startedMs: number };
  /** The longest time during the recovery with no batch committed on the partitions the fault did not move. */
  othersQuietMs?: number;
  /** From the fault to every partition held by a running member, spread evenly. */
  rebalancedMs: number | undefined;
  /** kill: the member killed itself inside a batch (not killed from outside, between batches). */
  midBatch?: boolean;
  /** A transaction elsewhere on the server, older than the fault, that was still open during the recovery. */
  heldBackBy?: Holder;
  /** term: its exit. */
  exitMs?: number;
  exitCode?: number | null;
  exitSignal?: NodeJS.Signals | null;
}

const ms = (value: number) => `${Math.round(value).toLocaleString('en-US')} ms`;

/** Every partition held by a running member, each member holding floor(N/M) or ceil(N/M) of them. */
function balanced(owners: readonly (string | null)[], members: readonly string[]): boolean {
  if (members.length === 0 || owners.length !== partitions) return false;
  const held = new Map(members.map((name) => [name, 0]));
  for (const owner of owners) {
    const count = owner === null ? undefined : held.get(owner);
    if (count === undefined) return false;
    held.set(owner as string, count + 1);
  }
  const low = Math.floor(partitions / members.length);
  const high = Math.ceil(partitions / members.length);
  return [...held.values()].every((count) => count >= low && count <= high);
}

/**
 * Members of one transactional group of 8 partitions, under steady keyed load whose transactions
 * commit out of order, are killed (kill -9 inside a batch), added and stopped (SIGTERM) again and
 * again, at least one always running. Every message must have exactly one effect row, each key's
 * messages must be handled in order, and no two committed batches of one partition may overlap in
 * time. Recovery is from each fault to the first committed batch of every partition it moved.
 */
export const rebalance: Scenario = {
  name: 'rebalance',
  summary: `members of a transactional group of ${partitions} partitions killed (kill -9 mid-batch), added and stopped (SIGTERM) under keyed load: 0 lost, 0 duplicated, each key in order, never two members on one partition at once`,
  async run(context): Promise<ScenarioOutcome> {
    const plan = settings[context.mode];
    const postbox = await Postbox.create({ databaseUrl: context.databaseUrl, migrate: 'auto' });
    const db = postbox.db;
    const processes = new ProcessGroup();
    const violations: string[] = [];
    const notes: string[] = [];
    try {
      await createBatchEffectsTables(db);
      await createWriterTables(db);

      // Server clock = this process's wall clock + offset (both read within one round trip).
      const before = Date.now();
      const serverClock = await serverNow(db);
      const offsetMs = serverClock.getTime() - (before + Date.now()) / 2;
      const toServer = (localMs: number) => new Date(localMs + offsetMs);
      const toLocal = (server: Date) => server.getTime() - offsetMs;
      const wallNow = () => performance.timeOrigin + performance.now();

      const running: Member[] = [];
      const signalled = new Set<ChildHandle>();
      const unexpectedExits: string[] = [];
      let started = 0;
      const startMember = (): Member => {
        const name = `member-${started++}`;
        const handle = processes.start(name, processEntry('partition-member.ts'), {
          DATABASE_URL: context.databaseUrl,
          GROUP: group,
          TOPIC: topic,
          PARTITIONS: String(partitions),
          MEMBER: name,
          LEASE_TTL_MS: String(leaseTtlMs),
          BATCH_SIZE: String(batchSize),
          WORK_MS: String(workMs),
          DEADLINE_MS: String(shutdownDeadlineMs),
        });
        const member = { name, handle };
        running.push(member);
        handle.exited.then((exit) => {
          if (running.includes(member)) running.splice(running.indexOf(member), 1);
          if (!signalled.has(handle)) {
            unexpectedExits.push(`${name} exited by itself (code ${exit.code}, signal ${exit.signal}): ${handle.outputTail.slice(-500)}`);
          }
        });
        return member;
      };
      const names = () => running.map((member) => member.name);
      let fewestMembers = initialMembers;
      let mostMembers = initialMembers;

      for (let i = 0; i < initialMembers; i++) startMember();
      await Promise.all(running.map((member) => member.handle.waitForLine('standby', startTimeoutMs)));
      await waitFor(
        async () => balanced(await partitionOwners(db, group), names()),
        recoveryTimeoutMs,
        'the first members to spread the partitions',
      );

      const writing = processes.start('ordered-writers', processEntry('ordered-writers.ts'), {
        DATABASE_URL: context.databaseUrl,
        TOPIC: topic,
        WRITERS: String(writers),
        KEYS: String(plan.keys),
        MESSAGES: String(1e12),
        MAX_PER_TRANSACTION: String(maxPerTransaction),
        MAX_TRANSACTION_MS: String(maxTransactionMs),
        ROLLBACK_RATE: String(rollbackRate),
        MESSAGES_PER_SECOND: String(plan.messagesPerSecond),
      });
      context.log(`${initialMembers} members hold the ${partitions} partitions; writers started`);
      // Every partition under way before the first fault, so that each fault finds batches in flight.
      const everyPartition = new Map(Array.from({ length: partitions }, (_, partition) => [partition, null]));
      const since = toServer(wallNow());
      await waitFor(
        async () => (await firstBatchesAfter(db, everyPartition, since)).size === partitions,
        startTimeoutMs,
        'a committed batch on every partition',
        50,
      );

      const faults: FaultRecord[] = [];
      const stalls: string[] = [];
      const heldBack: string[] = [];
      for (let round = 0; round < plan.faults; round++) {
        await delay(randomBetween(plan.gapMs[0], plan.gapMs[1]));
        let fault: Fault = cycle[round % cycle.length] as Fault;
        if (fault !== 'add' && running.length < 2) fault = 'add';
        const former = await partitionOwners(db, group);
        let record: FaultRecord;
        let faultAtLocal: number;
        let termExit: Promise<{ at: number; code: number | null; signal: NodeJS.Signals | null }> | undefined;
        let signalledAt = 0;
        if (fault === 'add') {
          const member = startMember();
          await member.handle.waitForLine('standby', startTimeoutMs);
          let joined: Date | undefined;
          await waitFor(
            async () => {
              joined = await memberJoinedAt(db, group, member.name);
              return joined !== undefined;
            },
            startTimeoutMs,
            `${member.name} to join`,
          );
          faultAtLocal = toLocal(joined as Date);
          record = { fault, member: member.name, moved: new Map(), recoveryMs: undefined, rebalancedMs: undefined };
        } else {
          const holders = running.filter((member) => former.includes(member.name));
          const victim = holders[randomBetween(0, holders.length - 1)] ?? (running[0] as Member);
          signalled.add(victim.handle);
          running.splice(running.indexOf(victim), 1);
          record = { fault, member: victim.name, moved: new Map(), recoveryMs: undefined, rebalancedMs: undefined };
          if (fault === 'kill') {
            victim.handle.signal('SIGUSR2');
            let exit = await Promise.race([victim.handle.exited, delay(midBatchWaitMs).then(() => undefined)]);
            record.midBatch = exit !== undefined;
            exit ??= await victim.handle.killHard();
            if (exit.signal !== 'SIGKILL') violations.push(`${victim.name} was to be killed but exited with ${exit.code ?? exit.signal}`);
            faultAtLocal = performance.timeOrigin + exit.at;
          } else {
            faultAtLocal = wallNow();
            signalledAt = performance.now();
            victim.handle.signal('SIGTERM');
            termExit = victim.handle.exited;
          }
        }

        // Recovered once the partitions are spread evenly over the running members and every
        // partition that changed owner has a batch committed by its new owner since the fault.
        const faultAt = toServer(faultAtLocal);
        const waitStarted = performance.now();
        let last: { partition: number; span: BatchSpan } | undefined;
        const wait = await waitUnlessHeldBack(db, {
          done: async () => {
            const holder = await holderElsewhere(db, faultAt);
            if (holder && holder.openSeconds > (record.heldBackBy?.openSeconds ?? 0)) record.heldBackBy = holder;
            const owners = await partitionOwners(db, group);
            if (!balanced(owners, names())) return false;
            record.rebalancedMs ??= wallNow() - faultAtLocal;
            const moved = new Map<number, string | null>();
            for (let partition = 0; partition < partitions; partition++) {
              if (owners[partition] !== former[partition]) moved.set(partition, former[partition] ?? null);
            }
            const firsts = await firstBatchesAfter(db, moved, faultAt);
            if (firsts.size < moved.size) return false;
            record.moved = moved;
            for (const [partition, span] of firsts) if (!last || span.endedAt > last.span.endedAt) last = { partition, span };
            return true;
          },
          since: faultAt,
          startedAt: waitStarted,
          timeoutMs: recoveryTimeoutMs,
          heldBackTimeoutMs,
          pollMs: 20,
        });
        if (wait.heldBackBy) heldBack.push(`fault ${round + 1}: ${wait.heldBackBy}`);
        if (wait.done) {
          record.recoveryMs = last ? toLocal(last.span.endedAt) - faultAtLocal : 0;
          if (last) {
            record.last = { partition: last.partition, startedMs: toLocal(last.span.startedAt) - faultAtLocal };
            record.othersQuietMs = await longestQuietSpellMs(db, [...record.moved.keys()], faultAt, last.span.endedAt);
          }
        } else {
          violations.push(`the group did not recover within ${ms(recoveryTimeoutMs)} of ${fault} ${record.member}`);
          stalls.push(
            `after ${fault} ${record.member}: partitions ${await describeGroupRow(db, group)}; oldest open transaction ${await describeOldestTransaction(db)}`,
          );
        }
        if (termExit) {
          const exit = await termExit;
          record.exitMs = exit.at - signalledAt;
          record.exitCode = exit.code;
          record.exitSignal = exit.signal;
          if (exit.code !== 0) violations.push(`${record.member} exited with ${exit.code ?? exit.signal} after SIGTERM`);
          if (record.exitMs > shutdownDeadlineMs)
            violations.push(`${record.member} took ${ms(record.exitMs)} to exit, over its ${ms(shutdownDeadlineMs)} deadline`);
        }
        faults.push(record);
        fewestMembers = Math.min(fewestMembers, running.length);
        mostMembers = Math.max(mostMembers, running.length);
        context.log(
          `fault ${round + 1}/${plan.faults}: ${fault} ${record.member}${record.midBatch === false ? ' (between batches)' : ''}, ` +
            `moved ${[...record.moved.keys()].join(',') || 'nothing'}; rebalanced ${record.rebalancedMs === undefined ? 'NOT' : `in ${ms(record.rebalancedMs)}`}, ` +
            `recovered ${record.recoveryMs === undefined ? 'NOT in time' : `in ${ms(record.recoveryMs)}`}` +
            `${record.last ? ` (last partition ${record.last.partition}, its first batch began at ${ms(record.last.startedMs)}; the other partitions committed nothing for ${ms(record.othersQuietMs ?? 0)} at most meanwhile)` : ''}; ${running.length} running` +
            `${record.heldBackBy && record.heldBackBy.openSeconds >= heldBackSeconds ? `; a transaction in ${record.heldBackBy.database}, older than the fault, was open ${record.heldBackBy.openSeconds.toFixed(1)} s` : ''}`,
        );
        if (record.recoveryMs === undefined) break;
      }

      // The end: writers stop, the survivors drain the backlog, then stop on SIGTERM.
      writing.signal('SIGTERM');
      await writing.waitForLine('done', startTimeoutMs);
      const catchUp = await waitForCatchUp(db, group, 60_000, heldBackTimeoutMs);
      if (catchUp.heldBackBy) notes.push(`catching up waited for ${catchUp.heldBackBy}`);
      if (!catchUp.caughtUp) violations.push(`the group still had messages to read 60 s after the writers stopped`);
      context.log(`backlog drained; stopping the ${running.length} remaining members`);
      const finalExits = await Promise.all(
        [...running].map(async (member) => {
          signalled.add(member.handle);
          const at = performance.now();
          member.handle.signal('SIGTERM');
          const exit = await member.handle.exited;
          if (exit.code !== 0) violations.push(`${member.name} exited with ${exit.code ?? exit.signal} on the final SIGTERM`);
          return exit.at - at;
        }),
      );
      violations.push(...unexpectedExits);
      if (faults.length < plan.faults) violations.push(`only ${faults.length} of ${plan.faults} faults were made`);

      // Counting: every message of the log (only committed transactions reach it) against the effect rows.
      const { committed, stats } = await writerTotals(db);
      const { rows } = await db.query<{ id: string }>('select message_id::text as id from postbox.messages where topic = $1', [topic]);
      const sentIds = rows.map((row) => row.id);
      const committedTotal = [...committed.values()].reduce((sum, count) => sum + count, 0);
      if (committedTotal !== sentIds.length)
        violations.push(`the log holds ${sentIds.length} messages, the writers committed ${committedTotal}`);
      const count = countDeliveries(sentIds, await countEffects(db));
      if (count.lost > 0) violations.push(`${count.lost} messages have no effect row, e.g. ${count.lostExamples.join(', ')}`);
      if (count.duplicated > 0) violations.push(`${count.duplicated} effect rows beyond the first of their message`);
      if (count.unexpected > 0) violations.push(`${count.unexpected} message ids at the sink are not in the log`);

      // Per-key order, and each message in its key's partition.
      const check = new KeySequenceCheck();
      let wrongPartition = 0;
      for (const message of await effectsInHandleOrder(db)) {
        check.see({ key: message.key, sequence: message.sequence, identity: message.id });
        if (message.partition !== partitionOf(message.key, message.id, partitions)) wrongPartition += 1;
      }
      const missing = check.missing(committed);
      if (check.outOfOrder > 0)
        violations.push(`${check.outOfOrder} messages handled out of their key's order (${check.orderExamples.join('; ')})`);
      if (missing.lost + missing.unexpected > 0) violations.push(`key sequences: ${missing.examples.join('; ')}`);
      if (wrongPartition > 0) violations.push(`${wrongPartition} messages were handled in a partition that is not their key's`);

      // One owner per partition: committed batches of a partition never overlap in time.
      const overlaps = await overlappingBatches(db);
      if (overlaps.count > 0)
        violations.push(`${overlaps.count} committed batches overlap an earlier batch of their partition: ${overlaps.examples.join('; ')}`);
      const batches = await batchCounts(db);

      const byFault = (fault: Fault) => faults.filter((record) => record.fault === fault);
      const recoveries = (list: FaultRecord[]) => list.flatMap((record) => (record.recoveryMs === undefined ? [] : [record.recoveryMs]));
      const rebalances = faults.flatMap((record) => (record.rebalancedMs === undefined ? [] : [record.rebalancedMs]));
      const kills = byFault('kill');
      const terms = byFault('term');
      const adds = byFault('add');
      const allRecoveries = recoveries(faults);
      // Recoveries held back by a transaction in another database: the watermark is server-wide, so
      // while it was open the partitions the fault did not move stalled too.
      const heldBackFaults = faults.filter(
        (record) => (record.heldBackBy?.openSeconds ?? 0) >= heldBackSeconds && (record.othersQuietMs ?? 0) >= heldBackSeconds * 1_000,
      );
      const clear = faults.filter((record) => !heldBackFaults.includes(record));
      const seconds = (value: number) => `${(value / 1000).toFixed(1)} s`;
      notes.push(
        `${faults.length} faults: ${kills.length} kill -9 (${kills.filter((k) => k.midBatch).length} inside a batch), ${adds.length} members added, ` +
          `${terms.length} SIGTERM; ${started} member processes in all, ${fewestMembers} to ${mostMembers} at a time; ${partitions} partitions, lease ${ms(leaseTtlMs)}`,
        `recovery = from the fault (the exit of a killed member, the SIGTERM, the join of a new member) to the first committed batch ` +
          `of the last partition it moved: ${describeDurations('after kill -9', recoveries(kills))}; ${describeDurations('after SIGTERM', recoveries(terms))}; ` +
          `${describeDurations('after a join', recoveries(adds))}`,
        heldBackFaults.length === 0
          ? 'no recovery was held back by a transaction in another database of the server'
          : `held back: ${heldBackFaults.length} recoveries waited for a transaction in another database (the watermark is server-wide: ` +
              `the partitions the fault did not move committed nothing either): ${heldBackFaults
                .map(
                  (record) =>
                    `${record.fault} ${record.member} ${ms(record.recoveryMs ?? Number.NaN)} (open ${record.heldBackBy?.openSeconds.toFixed(1)} s in ${record.heldBackBy?.database}, others idle ${ms(record.othersQuietMs ?? 0)})`,
                )
                .join(', ')}; without them: ${describeDurations('after kill -9', recoveries(clear.filter((r) => r.fault === 'kill')))}; ` +
              `${describeDurations('after SIGTERM', recoveries(clear.filter((r) => r.fault === 'term')))}; ` +
              `${describeDurations('after a join', recoveries(clear.filter((r) => r.fault === 'add')))}`,
        `${describeDurations('every partition owned by a running member and spread evenly again', rebalances)}`,
        `${batches.batches.toLocaleString('en-US')} committed batches (${(batches.messages / Math.max(1, batches.batches)).toFixed(1)} messages each), ` +
          `${batches.handovers} changes of owner between consecutive batches of a partition, ${overlaps.count} overlapping; ` +
          `${check.outOfOrder} out of key order over ${committed.size} keys`,
        `load: ${writers} writers at ${plan.messagesPerSecond} msg/s, ${stats.transactions ?? 0} transactions of 1-${maxPerTransaction} messages open 0-${maxTransactionMs} ms ` +
          `(${stats.rolledBack ?? 0} rolled back; ${stats.committedAheadOfOlder ?? 0} committed while an older one was open)`,
        `${describeDurations('exit after SIGTERM', [...terms.flatMap((t) => (t.exitMs === undefined ? [] : [t.exitMs])), ...finalExits])} (deadline ${ms(shutdownDeadlineMs)})`,
      );
      if (heldBack.length > 0) notes.push(`recoveries held back by a transaction elsewhere on the server: ${heldBack.join('; ')}`);
      notes.push(...stalls.map((stall) => `stalled: ${stall}`));
      context.log(`${count.sent} sent, ${count.received} effect rows; max recovery ${seconds(Math.max(0, ...allRecoveries))}`);
      return {
        runs: faults.length,
        sent: count.sent,
        received: count.received,
        lost: count.lost,
        duplicated: count.duplicated,
        maxRecoveryMs: allRecoveries.length > 0 ? Math.max(...allRecoveries) : 0,
        violations,
        notes,
      };
    } finally {
      await processes.killAll();
      await postbox.close(2_000);
    }
  },
};
