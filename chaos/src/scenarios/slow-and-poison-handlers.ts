import { type OutgoingMessage, Postbox, partitionOf, type RoutedMessage, Router } from 'postbox';
import type { Scenario, ScenarioOutcome } from '../scenario.js';
import { KeySequenceCheck } from '../support/key-sequence-check.js';
import { delay, waitFor } from '../support/wait.js';
import { waitForCount } from '../support/wait-for-count.js';

const topic = 'work';
const group = 'lanes';
const slowKey = 'slow';
const poisonKey = 'key-3';
const keys = 32;
const concurrency = 8;
const maxAttempts = 4;
const retryDelayMs = 50;

/** One pass of the workload: a group of `partitions` partitions, with the poison message retried in process or parked. */
interface LaneSetup {
  partitions: number;
  park: boolean;
}

/**
 * The same workload runs three times: through a group of 1 partition and of 8, the poison message
 * retried in process; then through 1 partition with parking, where it gets one attempt in its batch
 * and the rest from parking, with the same delays.
 */
const setups: readonly LaneSetup[] = [
  { partitions: 1, park: false },
  { partitions: 8, park: false },
  { partitions: 1, park: true },
];

const plans = {
  full: { messages: 10_000, slowEvery: 500, slowMs: 500 },
  reduced: { messages: 2_000, slowEvery: 250, slowMs: 300 },
} as const;
type Plan = (typeof plans)[keyof typeof plans];

interface WorkPayload {
  key: string;
  sequence: number;
  poison: boolean;
}

class PoisonError extends Error {}

/** The messages in publish order: every slowEvery-th on the slow key, one poison message half-way, the rest spread over the keys. */
function workload(messages: number, slowEvery: number): OutgoingMessage<WorkPayload>[] {
  const next = new Map<string, number>();
  return Array.from({ length: messages }, (_, index) => {
    const key = index % slowEvery === slowEvery - 1 ? slowKey : `key-${index % keys}`;
    const sequence = (next.get(key) ?? 0) + 1;
    next.set(key, sequence);
    const poison = key === poisonKey && sequence === Math.floor(messages / keys / 2);
    return { topic, type: 'work', key, payload: { key, sequence, poison } };
  });
}

interface Interval {
  start: number;
  end: number;
}

/** The intervals merged into disjoint ones, in order. */
function union(intervals: readonly Interval[]): Interval[] {
  const merged: Interval[] = [];
  for (const { start, end } of [...intervals].sort((a, b) => a.start - b.start)) {
    const last = merged.at(-1);
    if (last && start <= last.end) last.end = Math.max(last.end, end);
    else merged.push({ start, end });
  }
  return merged;
}

/** How long `within` covers of `span`, minus the parts `busy` covers (both unions of disjoint intervals). */
function uncovered(within: readonly Interval[], span: Interval, busy: readonly Interval[]): number {
  let total = 0;
  for (const interval of within) {
    const start = Math.max(interval.start, span.start);
    const end = Math.min(interval.end, span.end);
    if (end <= start) continue;
    let covered = 0;
    for (const b of busy) {
      if (b.end <= start) continue;
      if (b.start >= end) break;
      covered += Math.min(end, b.end) - Math.max(start, b.start);
    }
    total += end - start - covered;
  }
  return total;
}

/** A healthy key: neither the slow key nor the poison message's key (whose retries hold its own lane). */
const healthy = (key: string) => key !== slowKey && key !== poisonKey;

interface KeyGroup {
  keys: number;
  meanIdleMs: number;
}

interface LaneRun {
  setup: LaneSetup;
  slowCalls: Interval[];
  stuckMs: number;
  othersWhileStuck: number;
  /** Time during a slow call when no healthy-key message was in a handler although some were still unhandled. */
  groupIdleMs: number;
  /**
   * Per healthy key: time during a slow call when that key had messages unhandled and none in a
   * handler, averaged over the keys in the slow key's partition and over the others.
   */
  keyIdle: { sharing: KeyGroup; others: KeyGroup };
  healthyKeys: number;
  elapsedMs: number;
  check: KeySequenceCheck;
  lost: number;
  poisonAttempts: number;
  poisonSequence: number | undefined;
  /** How long the poison message held its lane in its batch: its attempts there and the delays between them. */
  poisonInBatchMs: number;
  /** When each of its attempts began, from its first. */
  poisonAttemptsAtMs: number[];
  /** From its first attempt to the next message of its key in a handler. */
  poisonKeyWaitMs: number;
  recoveryMs: number;
  violations: string[];
}

/** The route's failure handling: every attempt in process, or one there and the rest from parking, with the same delays. */
function failureHandling(setup: LaneSetup) {
  if (!setup.park) return { retry: { maxAttempts, initialDelayMs: retryDelayMs } };
  return { retry: { maxAttempts: 1 }, park: { initialDelayMs: retryDelayMs, maxAttempts: maxAttempts - 1, maxAgeMs: null } };
}

const labelOf = (setup: LaneSetup) =>
  `${setup.partitions} partition${setup.partitions === 1 ? '' : 's'}${setup.park ? ' with parking' : ''}`;

/** Runs the route over the published workload in a group set up as `setup` says, in this process. */
async function runLanes(postbox: Postbox, messages: OutgoingMessage<WorkPayload>[], setup: LaneSetup, plan: Plan): Promise<LaneRun> {
  const { partitions } = setup;
  const name = `${group}-${partitions}${setup.park ? '-parked' : ''}`;
  const poisonSequence = messages.find((message) => message.payload.poison)?.payload.sequence;
  const router = new Router(postbox);
  try {
    const check = new KeySequenceCheck();
    const slowCalls: Interval[] = [];
    const healthyCalls = new Map<string, Interval[]>();
    const otherDone: number[] = [];
    const poisonTries: Interval[] = [];
    let poisonId: string | undefined;
    let poisonKeyNextAt: number | undefined;
    router.addHandler<WorkPayload>({
      name,
      topics: [topic],
      concurrency,
      partitions,
      ...failureHandling(setup),
      handle: async (message: RoutedMessage<WorkPayload>, context) => {
        const { key, sequence, poison } = message.payload;
        const start = performance.now();
        // Each attempt from parking is an attempt 1 of its own: only the poison message's very first counts as its delivery.
        if (context.attempt === 1 && !(poison && poisonTries.length > 0)) check.see({ key, sequence, identity: message.id });
        if (poison) {
          poisonId = message.id;
          poisonTries.push({ start, end: performance.now() });
          throw new PoisonError(`poison message ${key}/${sequence}`);
        }
        if (key === poisonKey && sequence === (poisonSequence ?? 0) + 1) poisonKeyNextAt = start;
        if (key === slowKey) {
          await delay(plan.slowMs);
          slowCalls.push({ start, end: performance.now() });
          return;
        }
        await postbox.db.query('insert into chaos_lane_effects (message_id, partitions) values ($1, $2)', [message.id, partitions]);
        const end = performance.now();
        otherDone.push(end);
        if (!healthy(key)) return;
        const calls = healthyCalls.get(key) ?? [];
        calls.push({ start, end });
        healthyCalls.set(key, calls);
      },
    });
    const started = performance.now();
    await router.start();
    const othersTotal = messages.filter((message) => message.key !== slowKey && !message.payload.poison).length;
    const slowTotal = messages.filter((message) => message.key === slowKey).length;
    const timeoutMs = slowTotal * plan.slowMs * 3 + 30_000;
    const done = await waitForCount(() => otherDone.length + slowCalls.length, othersTotal + slowTotal, { stallMs: 15_000, timeoutMs });
    const finished = performance.now();
    const violations: string[] = [];
    if (!done.reached) violations.push(`the route stopped at ${done.count} of ${othersTotal + slowTotal} messages`);
    await waitFor(async () => (await postbox.groupStatus(name))[0]?.lagMessages === 0, 10_000, 'the group to pass every message').catch(
      (error: Error) => violations.push(error.message),
    );
    if (setup.park && (await postbox.parked.list({ group: name, limit: 1 })).length > 0)
      violations.push('messages are still parked at the end');
    await router.stop(10_000);

    // Other keys' progress while the slow key was inside its handler.
    let stuckMs = 0;
    let othersWhileStuck = 0;
    for (const call of slowCalls) {
      stuckMs += call.end - call.start;
      othersWhileStuck += otherDone.filter((at) => at >= call.start && at <= call.end).length;
    }
    if (slowCalls.length > 0 && othersWhileStuck === 0) violations.push('no other key made progress while the slow key was in its handler');

    // Idle time of the healthy keys while a slow call was in hand (see the scenario's note).
    const slow = union(slowCalls);
    const allHealthy = [...healthyCalls.values()].flat();
    const lastHealthyEnd = Math.max(started, ...allHealthy.map((call) => call.end));
    const groupIdleMs = uncovered(slow, { start: started, end: lastHealthyEnd }, union(allHealthy));
    const slowPartition = partitionOf(slowKey, '', partitions);
    const idleOf = { sharing: [] as number[], others: [] as number[] };
    for (const [key, calls] of healthyCalls) {
      const idle = uncovered(slow, { start: started, end: Math.max(...calls.map((call) => call.end)) }, union(calls));
      idleOf[partitionOf(key, '', partitions) === slowPartition ? 'sharing' : 'others'].push(idle);
    }
    const keyGroup = (idle: number[]): KeyGroup => ({
      keys: idle.length,
      meanIdleMs: idle.reduce((sum, ms) => sum + ms, 0) / Math.max(idle.length, 1),
    });

    const letters = await postbox.deadLetters.list({ group: name });
    const letter = letters.find((entry) => entry.messageId === poisonId);
    const poisonAttempts = poisonTries.length;
    if (poisonAttempts !== maxAttempts) violations.push(`the poison message was tried ${poisonAttempts} times, not ${maxAttempts}`);
    if (!letter) violations.push('the poison message is not in the dead letters');
    else if (letter.attempts !== maxAttempts) violations.push(`its dead letter records ${letter.attempts} attempts, not ${maxAttempts}`);
    if (letters.length !== 1) violations.push(`${letters.length} dead letters, expected only the poison message`);

    const committed = new Map<string, number>();
    for (const message of messages) committed.set(message.key as string, message.payload.sequence);
    const missing = check.missing(committed);
    if (missing.lost > 0) violations.push(`${missing.lost} messages never reached the handler (${missing.examples.join('; ')})`);
    if (check.outOfOrder > 0) violations.push(`${check.outOfOrder} messages out of their key's order (${check.orderExamples.join('; ')})`);
    const inBatch = poisonTries.slice(0, setup.park ? 1 : maxAttempts);
    const first = poisonTries[0] ?? { start: 0, end: 0 };
    return {
      setup,
      slowCalls,
      stuckMs,
      othersWhileStuck,
      groupIdleMs,
      keyIdle: { sharing: keyGroup(idleOf.sharing), others: keyGroup(idleOf.others) },
      healthyKeys: healthyCalls.size,
      elapsedMs: finished - started,
      check,
      lost: missing.lost,
      poisonAttempts,
      poisonSequence,
      poisonInBatchMs: (inBatch.at(-1)?.end ?? 0) - first.start,
      poisonAttemptsAtMs: poisonTries.map((attempt) => attempt.start - first.start),
      poisonKeyWaitMs: (poisonKeyNextAt ?? first.start) - first.start,
      recoveryMs: letter ? letter.lastFailedAt.getTime() - letter.firstFailedAt.getTime() : 0,
      violations: violations.map((violation) => `${labelOf(setup)}: ${violation}`),
    };
  } finally {
    await router.stop(5_000);
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const millis = (value: number) => `${Math.round(value).toLocaleString('en-US')} ms`;
const percent = (part: number, whole: number) => `${Math.round((100 * part) / Math.max(whole, 1))}%`;
const rate = (count: number, ms: number) => `${Math.round(count / (ms / 1000)).toLocaleString('en-US')} msg/s`;

function keyIdleText(group: KeyGroup, stuckMs: number, where: string): string {
  return `${seconds(group.meanIdleMs)} (${percent(group.meanIdleMs, stuckMs)}) on average for the ${group.keys} ${where}`;
}

/** What the poison message held, and how long its key's next message waited for it. */
function poisonText(run: LaneRun): string {
  const inBatch = run.setup.park ? 1 : run.poisonAttempts;
  const parked = run.poisonAttemptsAtMs.slice(inBatch);
  return (
    `the poison message held its lane ${millis(run.poisonInBatchMs)} in its batch (${inBatch} attempt${inBatch === 1 ? '' : 's'})` +
    `${parked.length > 0 ? `, its attempts from parking came ${parked.map((at) => `+${millis(at)}`).join(', ')} after its first` : ''}, ` +
    `and its key's next message began ${millis(run.poisonKeyWaitMs)} after its first attempt`
  );
}

function describe(run: LaneRun, plan: Plan): string {
  return (
    `${labelOf(run.setup)}: ${run.slowCalls.length} slow calls of ${plan.slowMs} ms (${seconds(run.stuckMs)} in all); other keys handled ${run.othersWhileStuck} messages meanwhile ` +
    `(${rate(run.othersWhileStuck, run.stuckMs)}); the healthy keys as a whole sat idle ${seconds(run.groupIdleMs)} (${percent(run.groupIdleMs, run.stuckMs)}) of it; ` +
    `each key ${keyIdleText(run.keyIdle.sharing, run.stuckMs, "in the slow key's partition")}` +
    `${run.keyIdle.others.keys > 0 ? `, ${keyIdleText(run.keyIdle.others, run.stuckMs, 'in the others')}` : ''}; ` +
    `all messages through in ${seconds(run.elapsedMs)}; ${poisonText(run)}`
  );
}

/** What parking changed against the same group without it. */
function parkingText(parked: LaneRun, inProcess: LaneRun): string {
  const idle = (run: LaneRun) =>
    `${seconds(run.groupIdleMs)} (${percent(run.groupIdleMs, run.stuckMs)}) as a whole, ${seconds(run.keyIdle.sharing.meanIdleMs)} ` +
    `(${percent(run.keyIdle.sharing.meanIdleMs, run.stuckMs)}) each`;
  return (
    `parking, 1 partition: the healthy keys sat idle ${idle(parked)} while the slow key was in its handler, against ${idle(inProcess)} without; ` +
    `the slow key's handler succeeds, slowly, so it is never parked and still holds each batch to its end. What parking changes is the poison ` +
    `message: it left its lane after ${millis(parked.poisonInBatchMs)} instead of ${millis(inProcess.poisonInBatchMs)} of attempts and delays ` +
    `(which ran beside the slow key's calls, in a batch those hold longer anyway), and its later attempts ran between batches; each of ` +
    `those comes after the batch in hand, however short its delay, so its key's next message waited ${millis(parked.poisonKeyWaitMs)} ` +
    `instead of ${millis(inProcess.poisonKeyWaitMs)}`
  );
}

export const slowAndPoisonHandlers: Scenario = {
  name: 'slow-and-poison-handlers',
  summary: `a router route with per-key lanes where one key's handler is slow and one message always fails, in a group of ${setups.map(labelOf).join(', then of ')}: other keys keep flowing, the poison message is dead-lettered after ${maxAttempts} attempts and the group moves on`,
  async run({ mode, databaseUrl, log }): Promise<ScenarioOutcome> {
    const plan = plans[mode];
    const postbox = await Postbox.create({ databaseUrl, migrate: 'auto' });
    try {
      await postbox.db.exec('create table chaos_lane_effects (message_id uuid not null, partitions int not null)');
      const messages = workload(plan.messages, plan.slowEvery);
      for (let start = 0; start < messages.length; start += 1_000) await postbox.publish(messages.slice(start, start + 1_000));

      const runs: LaneRun[] = [];
      for (const setup of setups) {
        const run = await runLanes(postbox, messages, setup, plan);
        log(describe(run, plan));
        runs.push(run);
      }
      const first = runs[0] as LaneRun;
      const parked = runs.find((run) => run.setup.park) as LaneRun;
      return {
        runs: runs.reduce((sum, run) => sum + run.slowCalls.length, 0),
        sent: messages.length * runs.length,
        received: runs.reduce((sum, run) => sum + run.check.deliveries, 0),
        lost: runs.reduce((sum, run) => sum + run.lost, 0),
        duplicated: runs.reduce((sum, run) => sum + run.check.duplicates, 0),
        maxRecoveryMs: Math.max(...runs.map((run) => run.recoveryMs)),
        violations: runs.flatMap((run) => run.violations),
        notes: [
          `the ${messages.length} messages go through a group of ${setups.map(labelOf).join(', then one of ')} (sent and received count each pass), ${concurrency} lanes, batches of 1,000, one process`,
          ...runs.map((run) => describe(run, plan)),
          parkingText(parked, first),
          `idle: while a slow call is in its handler, time during which no healthy-key message is in a handler although some are still unhandled ` +
            `(as a whole), or during which that key has messages unhandled and none in a handler (each key); healthy keys are the ${first.healthyKeys} ` +
            `other than the slow key and the poison message's`,
          `poison message ${poisonKey}/${first.poisonSequence}: ${runs.map((run) => run.poisonAttempts).join(', ')} attempts, then dead letters ` +
            `(with parking: 1 in its batch and ${maxAttempts - 1} from parking, the same delays of ${retryDelayMs} ms doubling); recovery = its first to last failure`,
        ],
      };
    } finally {
      await postbox.close(2_000);
    }
  },
};
