import { defaults } from '../config/defaults.js';
import type { BatchContext, Consumer, ConsumerOptions } from '../consumers/consumer.js';
import type { GroupHost } from '../consumers/group-host.js';
import { wholeBatchFirst } from '../consumers/split-batch.js';
import { addDeadLetter, type DeadLetter } from '../deadletters/dead-letter-store.js';
import { type RedeliveryOutcome, redeliverRetries, watchRetryRequests } from '../deadletters/redelivery.js';
import { isPostboxError, PostboxError } from '../errors/postbox-error.js';
import type { EventLike, RecordedEvent } from '../eventstore/event.js';
import { recordedEventOf } from '../eventstore/recorded-event.js';
import type { Upcasters } from '../eventstore/upcasters.js';
import type { LogMessage } from '../log/message.js';
import { readStreamRange } from '../log/read.js';
import type { HealthCheck } from '../observability/health.js';
import type { Logger } from '../observability/logger.js';
import type { Executor } from '../sql/database.js';
import { withSavepoint } from '../sql/savepoint.js';
import { type AsyncProjection, isPermanentFailure, type ProjectionContext, projectionGroup, versionedTable } from './projection.js';
import { projectionHealth } from './projection-health.js';
import { type ProjectionStatus, projectionStatuses } from './projection-status.js';
import {
  clearProjectionFailures,
  getProjection,
  markPrepared,
  type ProjectionRecord,
  pauseProjection,
  projectionsChannel,
  recordProjectionFailure,
  registerProjection,
  requestRebuild,
  resumeProjection,
  swapActiveVersion,
} from './projection-store.js';

export interface ProjectionRunnerOptions {
  upcasters?: Upcasters;
  logger?: Logger;
  /** Events per batch (one transaction with the checkpoint). */
  batchSize?: number;
  /**
   * Partitions of the projection's groups, by stream id: the processes running the projection share
   * them, and each stream's events are applied in order by one of them at a time. 1 by default.
   * Fixed when the projection's group is created; a rebuild's new version takes the current value.
   */
  partitions?: number;
  /** Consecutive failed batches after which the projection shows `faulted`. */
  maxFailures?: number;
  /** How often the projection's row is read for pause, resume and rebuild. */
  controlIntervalMs?: number;
  /** A rebuild swaps once its group is at most this many events behind. */
  swapMaxLagEvents?: number;
  redeliveryIntervalMs?: number;
  consumer?: Pick<ConsumerOptions, 'pollIntervalMs' | 'leaseTtlMs' | 'retryDelayMs' | 'maxRetryDelayMs'>;
}

export type ProjectionRunnerState = 'idle' | 'running' | 'stopping' | 'stopped';

/**
 * Runs an async projection: a transactional consumer group per read-model version, so that the read
 * model's writes commit with the checkpoint. It honours what the database says (pause, resume,
 * rebuild), so `postbox projections ...` steers every process that runs it. A rebuild builds the
 * next version beside the active one from the beginning of the log, and once it has caught up swaps
 * the active version in one transaction and drops the old group and read model.
 */
export class ProjectionRunner<E extends EventLike = EventLike> {
  private readonly consumers = new Map<number, Consumer>();
  private readonly logger: Logger;
  /** Set while the projection's row may record failures, so that the next committed batch clears them. */
  private mayHaveFailures = false;
  private stateValue: ProjectionRunnerState = 'idle';
  private timers: NodeJS.Timeout[] = [];
  private unlisten: (() => Promise<void>) | undefined;
  private stopRedelivery: (() => Promise<void>) | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly settings: Required<Omit<ProjectionRunnerOptions, 'upcasters' | 'logger' | 'consumer' | 'partitions'>>;

  /** `host` is usually the application's Postbox. */
  constructor(
    readonly host: GroupHost,
    readonly projection: AsyncProjection<E>,
    private readonly options: ProjectionRunnerOptions = {},
  ) {
    this.logger = (options.logger ?? host.logger).child({ projection: projection.name });
    const fallback = defaults.eventStore.projections;
    this.settings = {
      batchSize: options.batchSize ?? fallback.batchSize,
      maxFailures: options.maxFailures ?? fallback.maxFailures,
      controlIntervalMs: options.controlIntervalMs ?? fallback.controlIntervalMs,
      swapMaxLagEvents: options.swapMaxLagEvents ?? fallback.swapMaxLagEvents,
      redeliveryIntervalMs: options.redeliveryIntervalMs ?? fallback.redeliveryIntervalMs,
    };
  }

  get name(): string {
    return this.projection.name;
  }

  get state(): ProjectionRunnerState {
    return this.stateValue;
  }

  /** Registers the projection (creating and activating read model v1 the first time) and starts it. */
  async start(): Promise<void> {
    if (this.stateValue !== 'idle') {
      throw new PostboxError('POSTBOX_ERR_PROJECTION_STATE', `Projection ${this.name} was already started.`, { projection: this.name });
    }
    await this.host.db.transaction(async (tx) => {
      const created = await registerProjection(tx, this.name, this.projection.categories);
      if (created) {
        await this.prepare(tx, 1);
        await this.projection.readModel?.activate?.(tx, 1);
      }
    });
    this.stateValue = 'running';
    this.unlisten = await this.host.db.listen(projectionsChannel, (name) => {
      if (name === this.name) this.schedule();
    });
    this.timers.push(setInterval(() => this.schedule(), this.settings.controlIntervalMs));
    for (const timer of this.timers) timer.unref();
    this.stopRedelivery = await watchRetryRequests(this.host.db, this.settings.redeliveryIntervalMs, this.logger, () => this.redeliver());
    const refusal = await this.schedule();
    if (refusal) {
      // A group that refuses these options (another partition count, say) will refuse them on every
      // try: the caller hears it now rather than a projection that looks running and never reads.
      await this.stop();
      throw refusal;
    }
  }

  /** Stops every group of this projection, letting batches in hand commit. */
  async stop(deadlineMs: number = defaults.shutdownDeadlineMs): Promise<boolean> {
    if (this.stateValue !== 'running') {
      this.stateValue = 'stopped';
      return true;
    }
    this.stateValue = 'stopping';
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await this.unlisten?.().catch(() => undefined);
    await this.stopRedelivery?.();
    await this.queue;
    const results = await Promise.all([...this.consumers.values()].map((consumer) => consumer.stop(deadlineMs)));
    this.consumers.clear();
    this.stateValue = 'stopped';
    return results.every(Boolean);
  }

  /** Starts a blue/green rebuild (see the class comment); resolves once it is under way, not when it is done. */
  async rebuild(): Promise<ProjectionRecord> {
    const record = await requestRebuild(this.host.db, this.name);
    await this.schedule();
    return record;
  }

  async pause(): Promise<ProjectionRecord> {
    const record = await pauseProjection(this.host.db, this.name);
    await this.schedule();
    return record;
  }

  async resume(): Promise<ProjectionRecord> {
    const record = await resumeProjection(this.host.db, this.name);
    await this.schedule();
    return record;
  }

  async status(): Promise<ProjectionStatus> {
    const [status] = await projectionStatuses(this.host.db, this.name);
    if (!status) throw new PostboxError('POSTBOX_ERR_PROJECTION_NOT_FOUND', `Projection ${this.name} is not registered.`);
    return status;
  }

  /** The version readers should use, for read models that are not behind a view. */
  async activeVersion(): Promise<number> {
    const record = await getProjection(this.host.db, this.name);
    return record?.activeVersion ?? 1;
  }

  /** The active version's table: `${base}_v${version}`. */
  async table(base: string): Promise<string> {
    return versionedTable(base, await this.activeVersion());
  }

  async healthCheck(maxLagEvents: number = defaults.eventStore.projections.maxLagEvents): Promise<HealthCheck> {
    return projectionHealth(await this.status(), maxLagEvents);
  }

  /**
   * Runs a reconcile after any already queued; they never overlap. Resolves to the error of a
   * reconcile that failed for good (not retriable), which the timer will not fix.
   */
  private schedule(): Promise<PostboxError | undefined> {
    const run = this.queue
      .then(() => (this.stateValue === 'running' && !this.host.isClosed ? this.reconcile() : undefined))
      .then(
        () => undefined,
        (error: unknown) => {
          this.logger.error({ err: error }, 'projection control failed; it will be tried again');
          return isPostboxError(error) && !error.retriable ? error : undefined;
        },
      );
    this.queue = run.then(() => undefined);
    return run;
  }

  private async reconcile(): Promise<void> {
    const record = await getProjection(this.host.db, this.name);
    if (record && (record.faulted || record.failures > 0)) this.mayHaveFailures = true;
    if (!record || record.paused) {
      await this.stopConsumers(() => true);
      return;
    }
    const wanted = new Set([record.activeVersion, ...(record.rebuildVersion ? [record.rebuildVersion] : [])]);
    await this.stopConsumers((version) => !wanted.has(version));
    for (const version of wanted) {
      if (this.consumers.has(version)) continue;
      if (record.preparedVersion < version) {
        await this.host.db.transaction(async (tx) => {
          const locked = await getProjection(tx, this.name, true);
          if (locked && locked.preparedVersion < version) await this.prepare(tx, version);
        });
      }
      const consumer = this.createConsumer(version);
      await consumer.start();
      this.consumers.set(version, consumer);
    }
    if (record.rebuildVersion) await this.swapWhenCaughtUp(record.activeVersion, record.rebuildVersion);
  }

  private async prepare(tx: Executor, version: number): Promise<void> {
    await this.projection.readModel?.create(tx, version);
    await markPrepared(tx, this.name, version);
  }

  private async stopConsumers(which: (version: number) => boolean): Promise<void> {
    for (const [version, consumer] of [...this.consumers]) {
      if (!which(version)) continue;
      this.consumers.delete(version);
      await consumer.stop();
    }
  }

  private async swapWhenCaughtUp(from: number, to: number): Promise<void> {
    const [status] = await projectionStatuses(this.host.db, this.name);
    if (!status?.rebuild || status.rebuild.version !== to || status.rebuild.lagEvents > this.settings.swapMaxLagEvents) return;
    const swapped = await this.host.db.transaction(async (tx) => {
      const outcome = await swapActiveVersion(tx, this.name, from, to);
      if (outcome) await this.projection.readModel?.activate?.(tx, to);
      return outcome;
    });
    if (!swapped) return;
    this.logger.info({ from, to, supersededDeadLetters: swapped.supersededDeadLetters }, 'projection rebuilt: new version swapped in');
    await this.stopConsumers((version) => version === from);
    const drop = this.projection.readModel?.drop;
    if (drop) {
      await this.host.db
        .transaction((tx) => drop(tx, from))
        .catch((error) => this.logger.error({ err: error, version: from }, 'dropping the old read model failed'));
    }
  }

  private createConsumer(version: number): Consumer {
    return this.host.consumer({
      ...this.options.consumer,
      group: projectionGroup(this.name, version),
      topics: this.projection.categories,
      startFrom: 'earliest',
      transactional: true,
      batchSize: this.settings.batchSize,
      partitions: this.options.partitions,
      logger: this.logger,
      handleBatch: (messages, context) => this.handleBatch(version, messages, context),
      onError: (error) => this.onFailure(version, error),
    });
  }

  private context(tx: Executor, version: number, signal: AbortSignal): ProjectionContext {
    return { tx, projection: this.name, version, table: (base) => versionedTable(base, version), signal };
  }

  private wants(message: LogMessage): boolean {
    return message.streamId !== null && (!this.projection.eventTypes || this.projection.eventTypes.includes(message.type));
  }

  private toEvent(message: LogMessage): RecordedEvent<E> {
    const event = recordedEventOf(message);
    return (this.options.upcasters ? this.options.upcasters.upcast(event) : event) as unknown as RecordedEvent<E>;
  }

  private async handleBatch(version: number, messages: LogMessage[], batch: BatchContext): Promise<void> {
    const tx = batch.tx as Executor;
    const context = this.context(tx, version, batch.signal);
    const events: RecordedEvent<E>[] = [];
    const messageOf = new Map<RecordedEvent<E>, LogMessage>();
    for (const message of messages) {
      if (!this.wants(message)) continue;
      try {
        const event = this.toEvent(message);
        events.push(event);
        messageOf.set(event, message);
      } catch (error) {
        await this.deadLetter(tx, version, message, error);
      }
    }
    await wholeBatchFirst(events, {
      tx,
      signal: batch.signal,
      logger: this.logger,
      whole: (all) => this.projection.handle(all, context),
      oneByOne: async (all) => {
        for (const event of all) {
          const error = await this.attemptOne(tx, event, context);
          if (error === undefined) continue;
          if (!isPermanentFailure(this.projection, error, event)) throw error;
          await this.deadLetter(tx, version, messageOf.get(event) as LogMessage, error);
        }
      },
    });
    // A batch that commits ends a run of failures, whichever process recorded them.
    if (this.mayHaveFailures) {
      await clearProjectionFailures(tx, this.name);
      this.mayHaveFailures = false;
    }
  }

  /** One event in a savepoint: its error (its writes rolled back), or undefined when it was applied. */
  private async attemptOne(tx: Executor, event: RecordedEvent<E>, context: ProjectionContext): Promise<unknown> {
    try {
      await withSavepoint(tx, 'postbox_projection', () => this.projection.handle([event], context));
      return undefined;
    } catch (error) {
      return error;
    }
  }

  private async deadLetter(tx: Executor, version: number, message: LogMessage, error: unknown): Promise<void> {
    const failure = error instanceof Error ? error : new Error(String(error));
    this.logger.error({ err: failure, messageId: message.id }, 'projection gave up on an event; it is in dead letters');
    const now = new Date();
    await addDeadLetter(tx, {
      group: projectionGroup(this.name, version),
      handler: this.name,
      source: 'log',
      messageId: message.id,
      topic: message.topic,
      type: message.type,
      key: message.key,
      payload: message.payload,
      rawPayload: null,
      headers: { ...message.headers, streamId: message.streamId, streamPosition: String(message.streamPosition) },
      sourcePosition: `${message.transactionId}/${message.globalPosition}`,
      error: failure,
      attempts: 1,
      firstFailedAt: now,
      lastFailedAt: now,
    });
  }

  private onFailure(_version: number, error: unknown): void {
    this.mayHaveFailures = true;
    recordProjectionFailure(this.host.db, this.name, error, this.settings.maxFailures).catch((failure) =>
      this.logger.error({ err: failure }, 'could not record the projection failure'),
    );
  }

  /** Applies this projection's dead letters that someone asked to retry (`postbox dead-letters retry`). */
  private async redeliver(): Promise<void> {
    for (const [version, consumer] of this.consumers) {
      if (this.stateValue !== 'running' || this.host.isClosed) return;
      if (consumer.state !== 'active') continue;
      await redeliverRetries(this.host.db, projectionGroup(this.name, version), (tx, letter) => this.redeliverOne(tx, version, letter));
    }
  }

  /** Applies the event again, read from its stream, as it is now upcast; a failure dead-letters it again. */
  private async redeliverOne(tx: Executor, version: number, letter: DeadLetter): Promise<RedeliveryOutcome> {
    const position = Number(letter.headers.streamPosition);
    const streamId = letter.headers.streamId;
    if (typeof streamId !== 'string' || !Number.isSafeInteger(position)) return 'retried';
    const [message] = await readStreamRange(tx, { streamId, from: position, to: position, backward: false, limit: 1 });
    if (!message) return 'retried';
    let error: unknown;
    try {
      error = await this.attemptOne(tx, this.toEvent(message), this.context(tx, version, new AbortController().signal));
    } catch (upcastError) {
      error = upcastError;
    }
    if (error === undefined) return 'retried';
    await this.deadLetter(tx, version, message, error);
    return 'dead_lettered';
  }
}
