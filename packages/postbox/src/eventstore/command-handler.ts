import { defaults } from '../config/defaults.js';
import { ValidationError } from '../errors/postbox-error.js';
import type { Logger } from '../observability/logger.js';
import type { InlineProjection } from '../projections/inline-projection.js';
import { backoffDelay } from '../router/middleware/retry.js';
import { asExecutor, type CallerTransaction, type Database, type Executor } from '../sql/database.js';
import { executorFor, type Target } from '../sql/target.js';
import { type SnapshotOptions, shouldSnapshot } from './aggregate.js';
import { aggregateOn, storeSnapshot } from './aggregate-stream.js';
import { appendEvents, recordedEvents } from './append-to-stream.js';
import { findCommandResult, type StoredCommandResult, saveCommandResult } from './command-results.js';
import { ConcurrencyError } from './concurrency-error.js';
import { type Decider, decidedEvents } from './decider.js';
import type { EventData, EventLike, ExpectedVersion } from './event.js';
import type { CommandStatus, EventStoreMetrics } from './event-store-metrics.js';
import { checkStreamId } from './stream-id.js';
import type { Upcasters } from './upcasters.js';

export interface CommandRetryOptions {
  /** Attempts in all, the first included. */
  maxAttempts?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  multiplier?: number;
  jitter?: number;
}

export interface CommandHandlerOptions<Command, E extends EventLike, State> {
  decider: Decider<Command, E, State>;
  /** The aggregate's name: its snapshots are stored under it, and it is the command type when a command has none. */
  name?: string;
  snapshots?: SnapshotOptions<State> | false;
  /** Retries on concurrency conflicts; business errors are never retried. */
  retry?: CommandRetryOptions;
  /** The `type` label of the command metrics; by default the command's own `type` field. */
  commandType?: (command: Command) => string;
  /** How long a result is kept by command id. */
  resultTtlMs?: number;
  upcasters?: Upcasters;
  inlineProjections?: readonly InlineProjection<any>[];
  metrics?: EventStoreMetrics;
  payloadLimitBytes?: number;
  logger?: Logger;
}

export interface HandleOptions {
  /** Makes the command idempotent: a repeat within the result's time to live returns the first result and appends nothing. */
  commandId?: string;
  /** Decide only if the stream is at this version (say, the one a user saw). A conflict is then not retried. */
  expectedVersion?: ExpectedVersion;
  /** Stamped on every event the command appends. */
  traceId?: string;
  correlationId?: string;
  causationId?: string;
  userId?: string;
  headers?: Record<string, string>;
  /** The caller's open transaction: the command commits with it, and gets one attempt (a conflict is thrown). */
  tx?: CallerTransaction | Executor;
}

export interface CommandResult<State, E extends EventLike = EventLike> {
  streamId: string;
  previousVersion: number;
  nextExpectedVersion: number;
  eventIds: string[];
  globalPositions: bigint[];
  /** The events decided; empty for a duplicate. */
  events: readonly E[];
  /** The state after the command; undefined for a duplicate. */
  state: State | undefined;
  /** True when the command id had been handled already: nothing was appended this time. */
  duplicate: boolean;
  attempts: number;
}

/** Another transaction recorded the same command id first; the next attempt returns its result. */
class CommandInFlight extends Error {}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Handles commands on one kind of stream: load (from a snapshot when there is one), decide, append
 * with the loaded version as the expected version. A concurrency conflict reloads and decides again
 * with backoff, up to maxAttempts; an error thrown by decide() is never retried.
 */
export class CommandHandler<Command, E extends EventLike, State> {
  private readonly timing: { initialDelayMs: number; maxDelayMs: number; multiplier: number; jitter: number };
  private readonly maxAttempts: number;

  constructor(
    private readonly db: Database,
    private readonly options: CommandHandlerOptions<Command, E, State>,
  ) {
    const retry = options.retry ?? {};
    this.maxAttempts = retry.maxAttempts ?? defaults.eventStore.commandMaxAttempts;
    if (!Number.isSafeInteger(this.maxAttempts) || this.maxAttempts < 1) {
      throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `retry.maxAttempts must be a positive integer (got ${this.maxAttempts}).`, {
        option: 'retry.maxAttempts',
      });
    }
    this.timing = {
      initialDelayMs: retry.initialDelayMs ?? defaults.eventStore.commandRetryInitialDelayMs,
      maxDelayMs: retry.maxDelayMs ?? defaults.eventStore.commandRetryMaxDelayMs,
      multiplier: retry.multiplier ?? defaults.eventStore.commandRetryMultiplier,
      jitter: retry.jitter ?? defaults.eventStore.commandRetryJitter,
    };
  }

  async handle(streamId: string, command: Command, options: HandleOptions = {}): Promise<CommandResult<State, E>> {
    checkStreamId(streamId);
    if (options.commandId !== undefined && (typeof options.commandId !== 'string' || options.commandId === '')) {
      throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'commandId must be a non-empty string.', { option: 'commandId' });
    }
    const type = this.commandType(command);
    const started = performance.now();
    const finish = (status: CommandStatus) => {
      this.options.metrics?.commands.inc({ type, status });
      this.options.metrics?.commandDuration.observe({ type }, (performance.now() - started) / 1000);
    };
    for (let attempt = 1; ; attempt++) {
      const state = { rejected: false };
      try {
        const result = await this.attempt(streamId, command, options, type, attempt, state);
        finish(result.duplicate ? 'duplicate' : 'success');
        return result;
      } catch (error) {
        const conflict = error instanceof ConcurrencyError || error instanceof CommandInFlight;
        const userVersion = options.expectedVersion !== undefined && error instanceof ConcurrencyError;
        if (!conflict || options.tx || userVersion || attempt >= this.maxAttempts) {
          finish(state.rejected ? 'rejected' : conflict ? 'conflict' : 'failed');
          throw error instanceof CommandInFlight
            ? new ConcurrencyError(streamId, options.expectedVersion ?? 'any', -1, { cause: error })
            : error;
        }
        const delayMs = backoffDelay(attempt, this.timing);
        this.options.logger?.debug({ streamId, attempt, delayMs }, 'command met a concurrency conflict; deciding again');
        await sleep(delayMs);
      }
    }
  }

  private commandType(command: Command): string {
    if (this.options.commandType) return this.options.commandType(command);
    const own = (command as { type?: unknown } | null)?.type;
    return typeof own === 'string' ? own : (this.options.name ?? 'command');
  }

  /**
   * One try. The stream is loaded outside any transaction (the append's version check catches any
   * writer in between); only when the append is not the sole write (a snapshot, a command result,
   * inline projections) does the write side open a transaction.
   */
  private async attempt(
    streamId: string,
    command: Command,
    options: HandleOptions,
    type: string,
    attempt: number,
    state: { rejected: boolean },
  ): Promise<CommandResult<State, E>> {
    const { decider, name, upcasters } = this.options;
    const reader = options.tx ? asExecutor(options.tx) : executorFor(this.db);
    if (options.commandId !== undefined) {
      const found = await findCommandResult(reader, options.commandId);
      if (found) return fromStored<State, E>(found, attempt);
    }
    const snapshots = name && this.options.snapshots !== false ? (this.options.snapshots ?? {}) : undefined;
    const loaded = await aggregateOn<State, E>(reader, streamId, {
      initialState: () => decider.initialState(),
      evolve: (current, event) => decider.evolve(current, event),
      name,
      snapshots: snapshots ?? false,
      upcasters,
      saveSnapshots: false,
      logger: this.options.logger,
    });
    let decided: readonly E[];
    try {
      decided = decidedEvents(await decider.decide(command, loaded.state));
    } catch (error) {
      state.rejected = true;
      throw error;
    }
    const stamp = {
      traceId: options.traceId,
      correlationId: options.correlationId,
      causationId: options.causationId,
      userId: options.userId,
    };
    const events: EventData[] = decided.map((event) => {
      const data = event as unknown as EventData;
      return { ...stamp, ...data, headers: options.headers || data.headers ? { ...options.headers, ...data.headers } : undefined };
    });
    const expectedVersion = options.expectedVersion ?? loaded.version;
    const after = typeof expectedVersion === 'number' ? expectedVersion + events.length : undefined;
    const replace = loaded.snapshot === 'stale' || loaded.snapshot === 'unreadable';
    const snapshotDue =
      snapshots !== undefined &&
      events.length > 0 &&
      (replace ||
        after === undefined ||
        shouldSnapshot(snapshots.policy, {
          streamId,
          version: after,
          eventsSinceSnapshot: after - loaded.snapshotVersion,
          state: loaded.state,
        }));
    const write = async (target: Target) => {
      const outcome = await appendEvents(target, streamId, events, {
        expectedVersion,
        inlineProjections: this.options.inlineProjections,
        upcasters,
        payloadLimitBytes: this.options.payloadLimitBytes,
        metrics: this.options.metrics,
      });
      const { result } = outcome;
      let folded = loaded.state;
      let lastEvent = loaded.lastEvent;
      if (outcome.rows.length > 0) {
        const recorded = recordedEvents(
          outcome.rows,
          result,
          events.map((event) => event.data),
        );
        for (const event of recorded) folded = decider.evolve(folded, event as unknown as E);
        const last = recorded.at(-1);
        lastEvent = last && { globalPosition: last.globalPosition, createdAt: last.createdAt };
      }
      const version = result.nextExpectedVersion;
      if (snapshotDue && snapshots && name && lastEvent) {
        const due =
          replace ||
          shouldSnapshot(snapshots.policy, { streamId, version, eventsSinceSnapshot: version - loaded.snapshotVersion, state: folded });
        if (due) await storeSnapshot(executorFor(target), name, snapshots, { ...loaded, state: folded, version, lastEvent }, replace);
      }
      if (options.commandId !== undefined) {
        const saved = await saveCommandResult(executorFor(target), {
          commandId: options.commandId,
          streamId,
          commandType: type,
          result: {
            streamId,
            previousVersion: result.previousVersion,
            nextExpectedVersion: result.nextExpectedVersion,
            eventIds: result.eventIds,
            globalPositions: result.globalPositions.map(String),
          },
          ttlMs: this.options.resultTtlMs ?? defaults.eventStore.commandResultTtlMs,
        });
        if (!saved) throw new CommandInFlight('The same command id was handled by another transaction first.');
      }
      return { result, folded };
    };
    const soleWrite = !snapshotDue && options.commandId === undefined;
    const { result, folded } = options.tx
      ? await write(options.tx)
      : soleWrite
        ? await write(this.db)
        : await this.db.transaction((tx) => write(tx));
    return {
      streamId,
      previousVersion: result.previousVersion,
      nextExpectedVersion: result.nextExpectedVersion,
      eventIds: result.eventIds,
      globalPositions: result.globalPositions,
      events: decided,
      state: folded,
      duplicate: false,
      attempts: attempt,
    };
  }
}

function fromStored<State, E extends EventLike>(stored: StoredCommandResult, attempts: number): CommandResult<State, E> {
  return {
    streamId: stored.streamId,
    previousVersion: stored.previousVersion,
    nextExpectedVersion: stored.nextExpectedVersion,
    eventIds: stored.eventIds,
    globalPositions: stored.globalPositions.map((position) => BigInt(position)),
    events: [],
    state: undefined,
    duplicate: true,
    attempts,
  };
}
