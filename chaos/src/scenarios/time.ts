import { listDeadLetters, Postbox } from 'postbox';
import type { Scenario, ScenarioOutcome } from '../scenario.js';
import { type ChildHandle, ProcessGroup, processEntry } from '../support/child-process.js';
import { serverNow, waitForCatchUp } from '../support/consumer-group-row.js';
import { checkDelayed, type DelayedPayload } from '../support/delayed-delivery-check.js';
import { describeDurations } from '../support/durations.js';
import { createEffectsTable } from '../support/effects-table.js';
import { createFailingKeysTable, KeyOutages } from '../support/failing-keys.js';
import { checkKeyedDelivery } from '../support/keyed-delivery-check.js';
import { type InterruptionRun, interruptLeaseOwners } from '../support/lease-owner-interruptions.js';
import { groupLeaseWatch } from '../support/lease-watch.js';
import { createWriterTables, writerTotals } from '../support/ordered-writer-totals.js';
import { createCancelledTable, ScheduledCanceller } from '../support/scheduled-canceller.js';
import { createProducedTable, SteadyProducer } from '../support/steady-producer.js';
import { checkTicks, type TickSpan } from '../support/tick-check.js';
import { timekeeperLeaseWatch } from '../support/timekeeper-lease.js';
import { randomBetween, waitFor } from '../support/wait.js';

const workTopic = 'chaos-time-work';
const delayedTopic = 'chaos-time-delayed';
const tickTopic = 'chaos-time-ticks';
const group = 'chaos-time';
const leaseTtlMs = 1_000;
const parkDelayMs = 100;
const tickEveryMs = 1_000;
const startTimeoutMs = 60_000;
const recoveryTimeoutMs = 30_000;
// The visibility watermark is server-wide: a long transaction in another database holds these readers back too.
const heldBackTimeoutMs = 300_000;
const drainTimeoutMs = 60_000;

const settings = {
  full: {
    kills: 10,
    poolSize: 3,
    runMs: [1_000, 3_000],
    workPerSecond: 150,
    delayedPerSecond: 80,
    cancelsPerSecond: 8,
    delayMs: [300, 5_000],
    keys: 24,
    schedules: 3,
    outageMs: [1_000, 4_000],
    outageGapMs: [500, 2_000],
  },
  reduced: {
    kills: 2,
    poolSize: 2,
    runMs: [500, 1_500],
    workPerSecond: 100,
    delayedPerSecond: 50,
    cancelsPerSecond: 5,
    delayMs: [300, 2_500],
    keys: 12,
    schedules: 2,
    outageMs: [500, 1_500],
    outageGapMs: [300, 800],
  },
} as const;

const ms = (value: number) => `${Math.round(value).toLocaleString('en-US')} ms`;

/** A pool's kills in violations (a lease no one took over, a process that died by itself) and its recoveries. */
function judgeKills(label: string, run: InterruptionRun, planned: number, violations: string[], notes: string[]): number[] {
  const recovered = run.interruptions.flatMap((kill) => (kill.recoveryMs === undefined ? [] : [kill.recoveryMs]));
  if (recovered.length < run.interruptions.length)
    violations.push(`${label}: no process took over within ${ms(recoveryTimeoutMs)} of a kill`);
  if (run.interruptions.length < planned) violations.push(`${label}: only ${run.interruptions.length} of ${planned} kills were made`);
  violations.push(...run.unexpectedExits.map((exit) => `${label}: ${exit}`));
  notes.push(...run.stalls.map((stall) => `${label} stalled: ${stall}`));
  if (run.heldBack.length > 0)
    notes.push(`${label}: recoveries held back by a transaction elsewhere on the server: ${run.heldBack.join('; ')}`);
  return recovered;
}

/**
 * Delayed messages (some cancelled, racing the move), schedules ticking every second and a keyed
 * topic whose keys go down for a while, all read by one transactional group with parking; the
 * timekeeper's holder and the group's holder are killed (kill -9) at random moments, each with
 * standbys that take over. From the effect rows, written in the handler's transaction: nothing lost,
 * nothing doubled, no cancelled message delivered, nothing early, each key and schedule in order.
 */
export const time: Scenario = {
  name: 'time',
  summary:
    'kill -9 the timekeeper holder and the holder of a transactional group with parking, under delayed messages (some cancelled), per-second schedules and keys that fail for a while: 0 lost, 0 doubled ticks or effects, no cancelled message delivered, nothing early, each key in order',
  async run(context): Promise<ScenarioOutcome> {
    const plan = settings[context.mode];
    const postbox = await Postbox.create({ databaseUrl: context.databaseUrl, migrate: 'auto', timekeeper: 'off' });
    const db = postbox.db;
    const processes = new ProcessGroup();
    const violations: string[] = [];
    const notes: string[] = [];
    const keys = Array.from({ length: plan.keys }, (_, k) => `key-${k}`);
    let offsetMs = 0;
    const delayed = new SteadyProducer({
      postbox,
      topic: delayedTopic,
      messagesPerSecond: plan.delayedPerSecond,
      messagesPerTransaction: 5,
      message: (sequence) => {
        // Due on the server's clock, which moves it and stamps its handling.
        const due = new Date(Date.now() + offsetMs + randomBetween(plan.delayMs[0], plan.delayMs[1]));
        const payload: DelayedPayload = { sequence, due: due.toISOString() };
        return { topic: delayedTopic, type: 'delayed', key: keys[sequence % keys.length] as string, payload, deliverAt: due };
      },
    });
    const canceller = new ScheduledCanceller({ postbox, topic: delayedTopic, cancelsPerSecond: plan.cancelsPerSecond });
    const outages = new KeyOutages({ db, keys, keysAtOnce: [1, 3], outageMs: plan.outageMs, gapMs: plan.outageGapMs, group });
    const scheduleNames = Array.from({ length: plan.schedules }, (_, i) => `chaos-tick-${i}`);
    const firstTicks = new Map<string, Date>();
    let writers: ChildHandle | undefined;
    try {
      await createEffectsTable(db);
      await createWriterTables(db);
      await createProducedTable(db);
      await createFailingKeysTable(db);
      await createCancelledTable(db);
      const before = Date.now();
      const serverClock = await serverNow(db);
      offsetMs = serverClock.getTime() - (before + Date.now()) / 2;

      // The load starts once both pools are up, and before either pool's first kill.
      const startLoad = async () => {
        for (const name of scheduleNames) {
          const schedule = await postbox.schedule({
            name,
            cron: '* * * * * *',
            missed: 'all',
            message: { topic: tickTopic, type: 'tick', key: name, payload: { schedule: name } },
          });
          firstTicks.set(name, schedule.nextTickAt as Date);
        }
        writers = processes.start('ordered-writers', processEntry('ordered-writers.ts'), {
          DATABASE_URL: context.databaseUrl,
          TOPIC: workTopic,
          WRITERS: '4',
          KEYS: String(plan.keys),
          MESSAGES: String(1e12),
          MAX_PER_TRANSACTION: '20',
          MAX_TRANSACTION_MS: '100',
          ROLLBACK_RATE: '0.05',
          MESSAGES_PER_SECOND: String(plan.workPerSecond),
        });
        delayed.start();
        canceller.start();
        outages.start();
        context.log('both pools are up; writers, delayed messages, cancels, schedules and key outages started');
      };
      let poolsUp = 0;
      let bothUp: () => void = () => undefined;
      const loadStarted = new Promise<void>((resolve) => {
        bothUp = resolve;
      }).then(startLoad);
      const onPoolReady = async () => {
        poolsUp += 1;
        if (poolsUp === 2) bothUp();
        await loadStarted;
      };
      const common = {
        db,
        poolSize: plan.poolSize,
        interruptions: plan.kills,
        signal: 'SIGKILL' as const,
        runMs: plan.runMs,
        recoveryTimeoutMs,
        heldBackTimeoutMs,
        startTimeoutMs,
        onPoolReady,
      };
      const env = { DATABASE_URL: context.databaseUrl, LEASE_TTL_MS: String(leaseTtlMs) };
      const [keeperRun, groupRun] = await Promise.all([
        interruptLeaseOwners({
          ...common,
          lease: timekeeperLeaseWatch(db, [delayedTopic, tickTopic]),
          startProcess: (index) => processes.start(`timekeeper-${index}`, processEntry('timekeeper.ts'), env),
          log: (line) => context.log(`timekeeper: ${line}`),
        }),
        interruptLeaseOwners({
          ...common,
          lease: groupLeaseWatch(db, group),
          startProcess: (index) =>
            processes.start(`parking-${index}`, processEntry('parking-router.ts'), {
              ...env,
              GROUP: group,
              TOPICS: [workTopic, delayedTopic, tickTopic].join(','),
              BATCH_SIZE: '100',
              PARK_DELAY_MS: String(parkDelayMs),
            }),
          log: (line) => context.log(`parking group: ${line}`),
        }),
      ]);

      // The end: the load stops, the last outage ends, every delayed message falls due, the schedules pause.
      await outages.stop();
      await canceller.stop();
      await delayed.stop();
      writers?.signal('SIGTERM');
      await writers?.waitForLine('done', drainTimeoutMs);
      await waitFor(
        async () => (await db.query('select 1 from postbox.scheduled_messages where topic = $1 limit 1', [delayedTopic])).rows.length === 0,
        plan.delayMs[1] + drainTimeoutMs,
        'every delayed message to be moved into the log',
      );
      const spans: TickSpan[] = [];
      for (const name of scheduleNames) {
        const paused = await postbox.schedules.pause(name);
        spans.push({ name, everyMs: tickEveryMs, firstTick: firstTicks.get(name) as Date, lastTick: paused.lastTickAt as Date });
      }
      const catchUp = await waitForCatchUp(db, group, drainTimeoutMs, heldBackTimeoutMs);
      if (catchUp.heldBackBy) notes.push(`catching up waited for ${catchUp.heldBackBy}`);
      if (!catchUp.caughtUp) violations.push(`group ${group} had not read everything ${ms(drainTimeoutMs)} after the load stopped`);
      await waitFor(
        async () => (await postbox.parked.list({ group, limit: 1 })).length === 0,
        drainTimeoutMs,
        'the parked messages to be handled',
      ).catch((error: Error) => violations.push(error.message));
      context.log('everything due was handled; stopping the pools');
      const exits = await Promise.all(
        [...keeperRun.pool, ...groupRun.pool].map(async (handle) => {
          handle.signal('SIGTERM');
          return { name: handle.name, exit: await handle.exited };
        }),
      );
      for (const { name, exit } of exits)
        if (exit.code !== 0) violations.push(`${name} exited with ${exit.code ?? exit.signal} on SIGTERM`);

      const keeperRecoveries = judgeKills('timekeeper', keeperRun, plan.kills, violations, notes);
      const groupRecoveries = judgeKills('parking group', groupRun, plan.kills, violations, notes);
      const { committed, stats } = await writerTotals(db);
      const work = await checkKeyedDelivery(db, workTopic, committed);
      const late = await checkDelayed(db, delayedTopic);
      const ticks = await checkTicks(db, tickTopic, spans);
      violations.push(...work.violations, ...late.violations, ...ticks.violations);
      const letters = await listDeadLetters(db, { group });
      if (letters.length > 0) violations.push(`${letters.length} messages went to dead letters, though every key came back`);

      const counts = [work.count, late.count, ticks.count];
      const sum = (pick: (count: (typeof counts)[number]) => number) => counts.reduce((total, count) => total + pick(count), 0);
      notes.push(
        `${keeperRun.interruptions.length} kill -9 of the timekeeper holder and ${groupRun.interruptions.length} of the parking group's holder, ` +
          `each pool ${plan.poolSize} processes with replacements, kills ${plan.runMs[0]}-${plan.runMs[1]} ms after the previous recovery; lease ${ms(leaseTtlMs)}`,
        `recovery: ${describeDurations('after a kill of the timekeeper holder (to the next message it put into the log)', keeperRecoveries)}; ` +
          describeDurations("after a kill of the group's holder (to its next checkpoint)", groupRecoveries),
        `work: ${work.count.sent} messages over ${committed.size} keys from 4 writers at ${plan.workPerSecond} msg/s ` +
          `(${stats.transactions ?? 0} transactions, ${stats.rolledBack ?? 0} rolled back, ${stats.committedAheadOfOlder ?? 0} committed while an older one was open); ` +
          `${work.order.outOfOrder} out of key order`,
        `delayed: ${late.count.sent + canceller.cancelled} written at ${plan.delayedPerSecond} msg/s due ${plan.delayMs[0]}-${plan.delayMs[1]} ms later, ` +
          `${canceller.cancelled} cancelled (never in the log), ${canceller.tooLate} cancels came after the move (delivered)`,
        ...late.notes,
        ...ticks.notes,
        `parking: ${outages.outages} key outages of ${plan.outageMs[0]}-${plan.outageMs[1]} ms, up to ${outages.mostParked} messages parked at once over ` +
          `${outages.mostParkedKeys} keys; ${letters.length} dead letters`,
      );
      const recoveries = [...keeperRecoveries, ...groupRecoveries];
      context.log(`${sum((c) => c.sent)} sent, ${sum((c) => c.received)} effect rows; max recovery ${ms(Math.max(0, ...recoveries))}`);
      return {
        runs: keeperRun.interruptions.length + groupRun.interruptions.length,
        sent: sum((c) => c.sent) + ticks.lost,
        received: sum((c) => c.received),
        lost: sum((c) => c.lost) + ticks.lost,
        duplicated: sum((c) => c.duplicated) + ticks.doubled,
        maxRecoveryMs: Math.max(0, ...recoveries),
        violations,
        notes,
      };
    } finally {
      await outages.stop().catch(() => undefined);
      await canceller.stop();
      await delayed.stop();
      await processes.killAll();
      await postbox.close(2_000);
    }
  },
};
