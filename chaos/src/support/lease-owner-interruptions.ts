import type { Executor } from 'postbox';
import type { ChildHandle } from './child-process.js';
import { describeOldestTransaction, ownerPid, serverNow, waitUnlessHeldBack } from './consumer-group-row.js';
import type { LeaseWatch } from './lease-watch.js';
import { delay, randomBetween, waitFor } from './wait.js';

export interface InterruptionOptions {
  /** The parent's connection to the scenario's database. */
  db: Executor;
  /** The lease whose holder is interrupted, and whose work shows recovery (a consumer group's: groupLeaseWatch). */
  lease: LeaseWatch;
  /** Starts one more process of the pool; it prints "standby" once its consumer has started. */
  startProcess(index: number): ChildHandle;
  /**
   * Processes started at first and kept running while interruptions remain: one holds the lease,
   * the others stand by to take it over. With interruptions + 1, no process starts mid-run.
   */
  poolSize: number;
  interruptions: number;
  signal: 'SIGKILL' | 'SIGTERM';
  /** How long the holder works after the previous recovery before it is interrupted, drawn at random. */
  runMs: readonly [number, number];
  recoveryTimeoutMs: number;
  /**
   * How long a recovery may wait past recoveryTimeoutMs while a transaction elsewhere on the server,
   * older than the signal, holds every reader back (the visibility watermark is server-wide).
   */
  heldBackTimeoutMs: number;
  startTimeoutMs: number;
  /** Called once the first processes have started; the first interruption comes after it resolves. */
  onPoolReady?(): void | Promise<void>;
  log(line: string): void;
}

export interface Interruption {
  pid: number;
  /** Work waiting for the holder when the signal was sent (messages past the checkpoint, say). */
  lagAtSignal: number;
  /** From the signal to the exit seen by this process. */
  exitMs: number;
  exitCode: number | null;
  exitSignal: NodeJS.Signals | null;
  /** From the signal to the first checkpoint committed by another process; undefined when it did not come in time. */
  recoveryMs: number | undefined;
}

export interface InterruptionRun {
  interruptions: Interruption[];
  /** Processes still running at the end: stop them once the backlog is done. */
  pool: ChildHandle[];
  /** Processes that exited without being signalled, with their exit and the end of their output. */
  unexpectedExits: string[];
  /** For an interruption no one recovered from: the lease's rows and what the other processes printed. */
  stalls: string[];
  /** Recoveries that waited past the timeout for a long transaction elsewhere on the server, and what held them. */
  heldBack: string[];
}

/**
 * Runs a pool of identical processes over one lease (a consumer group's, the timekeeper's) and
 * interrupts whichever holds it, `interruptions` times, at a random moment of its work. After each
 * signal it waits until another process holds the lease and has done its work (the recovery: for a
 * group, a checkpoint committed), then starts a replacement while the pool is smaller than it and
 * interruptions remain. Throws when a process fails to start; a lease no one takes over in time is
 * recorded (recoveryMs undefined) and the run stops there.
 */
export async function interruptLeaseOwners(options: InterruptionOptions): Promise<InterruptionRun> {
  let started = 0;
  const pool: ChildHandle[] = [];
  const signalled = new Set<ChildHandle>();
  const unexpectedExits: string[] = [];
  const stalls: string[] = [];
  const heldBack: string[] = [];
  const startOne = () => {
    const handle = options.startProcess(started++);
    pool.push(handle);
    handle.exited.then((exit) => {
      pool.splice(pool.indexOf(handle), 1);
      if (!signalled.has(handle)) {
        unexpectedExits.push(
          `pid ${handle.pid} exited by itself (code ${exit.code}, signal ${exit.signal}): ${handle.outputTail.slice(-500)}`,
        );
      }
    });
    return handle;
  };
  for (let i = 0; i < options.poolSize; i++) startOne();
  await Promise.all(pool.map((handle) => handle.waitForLine('standby', options.startTimeoutMs)));
  await options.onPoolReady?.();

  const holder = async (): Promise<{ handle: ChildHandle; owner: string }> => {
    let found: { handle: ChildHandle; owner: string } | undefined;
    await waitFor(
      async () => {
        const owner = await options.lease.owner();
        const pid = owner ? ownerPid(owner) : undefined;
        const handle = pool.find((candidate) => candidate.pid === pid && candidate.running);
        if (handle && owner) found = { handle, owner };
        return found !== undefined;
      },
      options.recoveryTimeoutMs,
      `a process of the pool to hold ${options.lease.label}`,
    );
    return found as { handle: ChildHandle; owner: string };
  };

  const interruptions: Interruption[] = [];
  for (let round = 0; round < options.interruptions; round++) {
    await delay(randomBetween(options.runMs[0], options.runMs[1]));
    const { handle, owner } = await holder();
    // Someone must be ready to take over, or the measure would be the start-up time of a process.
    if (!pool.some((other) => other !== handle)) startOne();
    await waitFor(
      () => pool.some((other) => other !== handle && other.hasPrinted('standby')),
      options.startTimeoutMs,
      () => `a standby process (processes that exited by themselves: ${unexpectedExits.join(' | ') || 'none'})`,
    );
    const lagAtSignal = await options.lease.backlog();
    const since = await serverNow(options.db);
    const signalledAt = performance.now();
    signalled.add(handle);
    handle.signal(options.signal);
    const exit = await handle.exited;
    const recovery = await waitForRecovery(options, owner, since, signalledAt);
    const recoveryMs = recovery.ms;
    if (recovery.heldBackBy) heldBack.push(`${options.signal} ${round + 1}: ${recovery.heldBackBy}`);
    if (recoveryMs === undefined) {
      const others = pool.map((other) => `pid ${other.pid}: ${other.outputTail.slice(-600)}`).join(' | ');
      const row = await options.lease.describe();
      const oldest = await describeOldestTransaction(options.db);
      stalls.push(`${options.lease.label}: ${row}; oldest open transaction on the server ${oldest}; output of the others: ${others}`);
    }
    interruptions.push({
      pid: handle.pid ?? 0,
      lagAtSignal,
      exitMs: exit.at - signalledAt,
      exitCode: exit.code,
      exitSignal: exit.signal,
      recoveryMs,
    });
    options.log(
      `${options.signal} ${round + 1}/${options.interruptions} to pid ${handle.pid} (lag ${lagAtSignal}): exit ${exit.code ?? exit.signal} after ${(exit.at - signalledAt).toFixed(0)} ms, ` +
        `recovered ${recoveryMs === undefined ? 'NOT in time' : `in ${recoveryMs.toFixed(0)} ms`}`,
    );
    if (recoveryMs === undefined) break;
    // Keep a standby for each interruption still to come, up to the pool size; the last holder drains the backlog.
    const remaining = options.interruptions - round - 1;
    if (pool.length < Math.min(options.poolSize, remaining + 1)) startOne();
  }
  for (const handle of pool) signalled.add(handle);
  return { interruptions, pool: [...pool], unexpectedExits, stalls, heldBack };
}

/**
 * Waits until another process commits, up to recoveryTimeoutMs; past that, only while readers are
 * held back by a transaction older than the signal (then `heldBackBy` says which).
 */
async function waitForRecovery(
  options: InterruptionOptions,
  formerOwner: string,
  since: Date,
  signalledAt: number,
): Promise<{ ms: number | undefined; heldBackBy?: string }> {
  const wait = await waitUnlessHeldBack(options.db, {
    done: () => options.lease.workedSince(formerOwner, since),
    since,
    startedAt: signalledAt,
    timeoutMs: options.recoveryTimeoutMs,
    heldBackTimeoutMs: options.heldBackTimeoutMs,
    pollMs: 10,
  });
  return { ms: wait.done ? wait.at - signalledAt : undefined, heldBackBy: wait.heldBackBy };
}
