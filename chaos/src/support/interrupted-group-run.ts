import type { OutgoingMessage, Postbox } from 'postbox';
import type { ScenarioContext, ScenarioOutcome } from '../scenario.js';
import type { ChildHandle } from './child-process.js';
import { groupLag, waitForCatchUp } from './consumer-group-row.js';
import { countDeliveries } from './delivery-count.js';
import { describeDurations } from './durations.js';
import { interruptLeaseOwners } from './lease-owner-interruptions.js';
import { groupLeaseWatch } from './lease-watch.js';
import { createProducedTable, outboxMismatch, producedIds, SteadyProducer } from './steady-producer.js';

/** One topic, its producer, the group that consumes it and the sink its effects land in. */
export interface Flow {
  label: string;
  topic: string;
  group: string;
  messagesPerSecond: number;
  messagesPerTransaction: number;
  message(sequence: number): OutgoingMessage;
  /** Times each message id was seen at the sink, read once everything has been consumed. */
  observe(): Promise<Map<string, number>>;
  /** The most duplicate deliveries this sink may show after these interruptions (0 for exactly-once effects). */
  duplicatesAllowed(interruptions: number): number;
  /** Other invariants of this sink, checked at the end: each broken one in words. */
  checkSink?(): Promise<string[]>;
}

export interface InterruptedGroupOptions {
  context: ScenarioContext;
  postbox: Postbox;
  /** The first flow's group is the one whose holder is interrupted and whose progress shows recovery. */
  flows: readonly Flow[];
  /** Starts one process of the pool; it must be given leaseTtlMs as its group's lease time. */
  startProcess(index: number): ChildHandle;
  leaseTtlMs: number;
  signal: 'SIGKILL' | 'SIGTERM';
  interruptions: number;
  poolSize: number;
  runMs: readonly [number, number];
  /** SIGTERM only: the shutdown deadline the processes were given; a slower exit is a violation. */
  shutdownDeadlineMs?: number;
  catchUpTimeoutMs: number;
}

const startTimeoutMs = 60_000;
const recoveryTimeoutMs = 30_000;
// The visibility watermark is server-wide: a long transaction in another database holds these readers back too.
const heldBackTimeoutMs = 300_000;

function ms(value: number): string {
  return `${Math.round(value).toLocaleString('en-US')} ms`;
}

/**
 * Starts the pool of processes, publishes every flow at a steady rate, interrupts the holder of the first flow's group again and
 * again, lets the last processes drain the backlog and stop on SIGTERM, then counts each sink
 * against what was committed to the outbox.
 */
export async function runInterruptedGroups(options: InterruptedGroupOptions): Promise<ScenarioOutcome> {
  const { context, postbox, flows } = options;
  const db = postbox.db;
  const violations: string[] = [];
  const notes: string[] = [];
  await createProducedTable(db);
  const producers = flows.map(
    (flow) =>
      new SteadyProducer({
        postbox,
        topic: flow.topic,
        messagesPerSecond: flow.messagesPerSecond,
        messagesPerTransaction: flow.messagesPerTransaction,
        message: (sequence) => flow.message(sequence),
      }),
  );
  let run: Awaited<ReturnType<typeof interruptLeaseOwners>>;
  try {
    run = await interruptLeaseOwners({
      db,
      lease: groupLeaseWatch(db, (flows[0] as Flow).group),
      startProcess: options.startProcess,
      poolSize: options.poolSize,
      interruptions: options.interruptions,
      signal: options.signal,
      runMs: options.runMs,
      recoveryTimeoutMs,
      heldBackTimeoutMs,
      startTimeoutMs,
      // Messages start to flow once the processes are up, so that a slow start does not pile up a backlog.
      onPoolReady: () => {
        context.log(`${options.poolSize} processes started; messages flow`);
        for (const producer of producers) producer.start();
      },
      log: context.log,
    });
  } finally {
    await Promise.all(producers.map((producer) => producer.stop()));
  }

  for (const flow of flows) {
    const catchUp = await waitForCatchUp(db, flow.group, options.catchUpTimeoutMs, heldBackTimeoutMs);
    if (catchUp.heldBackBy) notes.push(`${flow.label}: catching up waited for ${catchUp.heldBackBy}`);
    if (!catchUp.caughtUp) {
      violations.push(
        `group ${flow.group} still had ${await groupLag(db, flow.group)} messages to read ${ms(options.catchUpTimeoutMs)} after the producers stopped`,
      );
    }
  }
  context.log('backlog drained; stopping the last processes');
  const finalExits = await Promise.all(
    run.pool.map(async (handle) => {
      const signalledAt = performance.now();
      handle.signal('SIGTERM');
      const exit = await handle.exited;
      return { pid: handle.pid, code: exit.code, signal: exit.signal, ms: exit.at - signalledAt };
    }),
  );
  for (const exit of finalExits) {
    if (exit.code !== 0) violations.push(`pid ${exit.pid} exited with ${exit.code ?? exit.signal} on the final SIGTERM`);
  }
  violations.push(...run.unexpectedExits);
  notes.push(...run.stalls.map((stall) => `stalled: ${stall}`));
  if (run.heldBack.length > 0) {
    notes.push(`recoveries held back past ${ms(recoveryTimeoutMs)} by a transaction elsewhere on the server: ${run.heldBack.join('; ')}`);
  }

  const { interruptions } = run;
  const recovered = interruptions.flatMap((i) => (i.recoveryMs === undefined ? [] : [i.recoveryMs]));
  for (const interruption of interruptions) {
    if (interruption.recoveryMs === undefined) {
      violations.push(
        `no process took over group ${(flows[0] as Flow).group} within ${ms(recoveryTimeoutMs)} of the ${options.signal} to pid ${interruption.pid}`,
      );
    }
  }
  if (interruptions.length < options.interruptions) {
    violations.push(`only ${interruptions.length} of ${options.interruptions} interruptions were made`);
  }
  if (options.signal === 'SIGTERM') {
    const deadline = options.shutdownDeadlineMs ?? Number.POSITIVE_INFINITY;
    for (const interruption of interruptions) {
      if (interruption.exitCode !== 0)
        violations.push(`pid ${interruption.pid} exited with ${interruption.exitCode ?? interruption.exitSignal} after SIGTERM`);
      if (interruption.exitMs > deadline)
        violations.push(`pid ${interruption.pid} took ${ms(interruption.exitMs)} to exit, over the ${ms(deadline)} deadline`);
    }
    const exitTimes = [...interruptions.map((i) => i.exitMs), ...finalExits.map((e) => e.ms)];
    notes.push(
      `${describeDurations('exit after SIGTERM', exitTimes)}; the slowest took ${ms(Math.max(0, ...exitTimes))} of its ${ms(deadline)} deadline`,
    );
  }
  notes.push(`${describeDurations('recovery', recovered)}, with a lease time of ${ms(options.leaseTtlMs)}`);
  notes.push(
    `${interruptions.filter((i) => i.lagAtSignal > 0).length} of ${interruptions.length} ${options.signal}s came with messages waiting`,
  );

  let sent = 0;
  let received = 0;
  let lost = 0;
  let duplicated = 0;
  for (const [index, flow] of flows.entries()) {
    const producer = producers[index] as SteadyProducer;
    const ids = await producedIds(db, flow.topic);
    const count = countDeliveries(ids, await flow.observe());
    const allowed = flow.duplicatesAllowed(interruptions.length);
    sent += count.sent;
    received += count.received;
    lost += count.lost;
    duplicated += count.duplicated;
    notes.push(
      `${flow.label}: ${count.sent} sent at ${flow.messagesPerSecond} msg/s, ${count.received} received, ${count.lost} lost, ` +
        `${count.duplicated} duplicated (allowed ${allowed})`,
    );
    if (count.lost > 0) violations.push(`${flow.label}: ${count.lost} messages lost, e.g. ${count.lostExamples.join(', ')}`);
    if (count.duplicated > allowed) violations.push(`${flow.label}: ${count.duplicated} duplicates, over the ${allowed} allowed`);
    if (count.unexpected > 0)
      violations.push(`${flow.label}: ${count.unexpected} message ids at the sink were never committed by the producer`);
    if (count.sent !== producer.committed) {
      violations.push(`${flow.label}: the producer committed ${producer.committed} messages but ${count.sent} business rows exist`);
    }
    if (producer.failedTransactions > 0)
      notes.push(`${flow.label}: ${producer.failedTransactions} producer transactions failed (${producer.lastError})`);
    if (flow.checkSink) violations.push(...(await flow.checkSink()).map((violation) => `${flow.label}: ${violation}`));
    const mismatch = await outboxMismatch(db, flow.topic);
    if (mismatch.rowsWithoutMessage + mismatch.messagesWithoutRow > 0) {
      violations.push(
        `${flow.label}: ${mismatch.rowsWithoutMessage} business rows without their message, ${mismatch.messagesWithoutRow} messages without their row`,
      );
    }
  }
  return {
    runs: interruptions.length,
    sent,
    received,
    lost,
    duplicated,
    maxRecoveryMs: recovered.length > 0 ? Math.max(...recovered) : 0,
    violations,
    notes,
  };
}
