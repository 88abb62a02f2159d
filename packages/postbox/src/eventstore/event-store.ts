import type { GroupHost } from '../consumers/group-host.js';
import type { LogPosition } from '../log/position.js';
import type { HealthCheck } from '../observability/health.js';
import type { InlineProjection } from '../projections/inline-projection.js';
import type { AsyncProjection } from '../projections/projection.js';
import { listProjectionDeadLetters, type ProjectionDeadLetterFilter } from '../projections/projection-dead-letters.js';
import { type ProjectionHealthOptions, projectionHealthChecks } from '../projections/projection-health.js';
import { ProjectionRunner, type ProjectionRunnerOptions } from '../projections/projection-runner.js';
import { projectionStatuses } from '../projections/projection-status.js';
import { listProjections, pauseProjection, requestRebuild, resumeProjection } from '../projections/projection-store.js';
import type { CallerTransaction, Executor } from '../sql/database.js';
import type { AggregateDefinition } from './aggregate.js';
import { type AggregateResult, type AggregateStreamOptions, aggregateStream } from './aggregate-stream.js';
import { type AppendResult, appendToStream } from './append-to-stream.js';
import { CommandHandler, type CommandHandlerOptions } from './command-handler.js';
import { type PruneCommandResultsOptions, pruneCommandResults } from './command-results.js';
import type { EventData, EventLike, ExpectedVersion } from './event.js';
import { EventStoreMetrics } from './event-store-metrics.js';
import { type ReadAllOptions, type ReadAllResult, readAll } from './read-all.js';
import { type ReadStreamOptions, readStream, type StreamReadResult } from './read-stream.js';
import {
  type CreateSnapshotsOptions,
  type CreateSnapshotsResult,
  createSnapshots,
  type SnapshotJob,
  startSnapshotJob,
} from './snapshot-job.js';
import {
  archiveStream,
  getStreamInfo,
  getStreamMetadata,
  restoreStream,
  type StreamInfo,
  setStreamMetadata,
  streamExists,
  tombstoneStream,
} from './stream-info.js';
import { Upcasters } from './upcasters.js';

export interface EventStoreOptions {
  /** Applied on every read, and used to stamp the schema version of new events. */
  upcasters?: Upcasters;
  /** Run in every append's transaction. */
  inlineProjections?: readonly InlineProjection<any>[];
  /** Where the metrics go; `new EventStoreMetrics(router.metrics.registry, postbox.db)` shares one /metrics. */
  metrics?: EventStoreMetrics;
}

/** What the event store runs on: consumer groups for its projections, and the payload limit of its appends. Postbox is one. */
export type EventStoreHost = GroupHost & { readonly payloadLimitBytes: number };

/**
 * The event store over a Postbox: streams are rows of the log, so every append is also a message on
 * its category's topic. Functions are also exported on their own (appendToStream, readStream...)
 * for code that holds a Database or a transaction rather than a Postbox.
 */
export class EventStore {
  readonly upcasters: Upcasters;
  readonly metrics: EventStoreMetrics;
  private readonly inline: readonly InlineProjection<any>[];

  /** `host` is usually the application's Postbox. */
  constructor(
    readonly host: EventStoreHost,
    options: EventStoreOptions = {},
  ) {
    this.upcasters = options.upcasters ?? new Upcasters();
    this.inline = options.inlineProjections ?? [];
    this.metrics = options.metrics ?? new EventStoreMetrics(undefined, host.db);
  }

  /**
   * Appends events. With `tx` (the caller's open transaction) they commit with the caller's other
   * writes; without it, atomically on their own.
   */
  append(
    streamId: string,
    events: EventData | readonly EventData[],
    options: { expectedVersion?: ExpectedVersion; tx?: CallerTransaction | Executor } = {},
  ): Promise<AppendResult> {
    return appendToStream(options.tx ?? this.host.db, streamId, events, {
      expectedVersion: options.expectedVersion,
      inlineProjections: this.inline,
      upcasters: this.upcasters,
      payloadLimitBytes: this.host.payloadLimitBytes,
      metrics: this.metrics,
    });
  }

  readStream<E extends EventLike = EventLike>(streamId: string, options: ReadStreamOptions = {}): Promise<StreamReadResult<E>> {
    return readStream<E>(this.host.db, streamId, { upcasters: this.upcasters, ...options });
  }

  /** Every stream's events after a position, never skipping a late commit. */
  readAll<E extends EventLike = EventLike>(options: Omit<ReadAllOptions, 'categories'> = {}): Promise<ReadAllResult<E>> {
    return readAll<E>(this.host.db, { upcasters: this.upcasters, ...options });
  }

  readCategory<E extends EventLike = EventLike>(
    category: string,
    options: { after?: LogPosition; limit?: number } = {},
  ): Promise<ReadAllResult<E>> {
    return readAll<E>(this.host.db, { upcasters: this.upcasters, ...options, categories: [category] });
  }

  aggregate<State, E extends EventLike = EventLike>(
    streamId: string,
    options: AggregateStreamOptions<State, E> | AggregateDefinition<State, E>,
    extra: Pick<AggregateStreamOptions<State, E>, 'asOf' | 'saveSnapshots'> = {},
  ): Promise<AggregateResult<State>> {
    return aggregateStream(this.host.db, streamId, { upcasters: this.upcasters, logger: this.host.logger, ...options, ...extra });
  }

  streamExists(streamId: string): Promise<boolean> {
    return streamExists(this.host.db, streamId);
  }

  streamInfo(streamId: string): Promise<StreamInfo> {
    return getStreamInfo(this.host.db, streamId);
  }

  getMetadata(streamId: string): Promise<Record<string, unknown>> {
    return getStreamMetadata(this.host.db, streamId);
  }

  setMetadata(streamId: string, metadata: Record<string, unknown>, options: { merge?: boolean } = {}): Promise<Record<string, unknown>> {
    return setStreamMetadata(this.host.db, streamId, metadata, options);
  }

  tombstone(streamId: string): Promise<void> {
    return tombstoneStream(this.host.db, streamId);
  }

  archive(streamId: string): Promise<void> {
    return archiveStream(this.host.db, streamId);
  }

  restore(streamId: string): Promise<void> {
    return restoreStream(this.host.db, streamId);
  }

  commandHandler<Command, E extends EventLike, State>(
    options: CommandHandlerOptions<Command, E, State>,
  ): CommandHandler<Command, E, State> {
    return new CommandHandler(this.host.db, {
      upcasters: this.upcasters,
      inlineProjections: this.inline,
      metrics: this.metrics,
      payloadLimitBytes: this.host.payloadLimitBytes,
      logger: this.host.logger,
      ...options,
    });
  }

  /** An async projection; call start() on it. */
  projection<E extends EventLike>(projection: AsyncProjection<E>, options: ProjectionRunnerOptions = {}): ProjectionRunner<E> {
    return new ProjectionRunner(this.host, projection, { upcasters: this.upcasters, ...options });
  }

  /**
   * Projections as the database sees them, from any process: list, status, pause, resume, rebuild,
   * and the dead letters of all their versions (with why, for those a rebuild superseded).
   */
  get projections() {
    const db = this.host.db;
    return {
      list: () => listProjections(db),
      status: (name?: string) => projectionStatuses(db, name),
      pause: (name: string) => pauseProjection(db, name),
      resume: (name: string) => resumeProjection(db, name),
      rebuild: (name: string) => requestRebuild(db, name),
      health: (options: ProjectionHealthOptions = {}): Promise<HealthCheck[]> => projectionHealthChecks(db, options),
      deadLetters: (name: string, filter: ProjectionDeadLetterFilter = {}) => listProjectionDeadLetters(db, name, filter),
    };
  }

  createSnapshots(aggregate: AggregateDefinition, options: CreateSnapshotsOptions = {}): Promise<CreateSnapshotsResult> {
    return createSnapshots(this.host.db, { upcasters: this.upcasters, ...aggregate }, { logger: this.host.logger, ...options });
  }

  startSnapshotJob(aggregate: AggregateDefinition, options: CreateSnapshotsOptions & { intervalMs?: number } = {}): SnapshotJob {
    return startSnapshotJob(this.host.db, { upcasters: this.upcasters, ...aggregate }, { logger: this.host.logger, ...options });
  }

  /**
   * Deletes command results past their time to live (they are ignored once expired anyway).
   * `postbox.startMaintenance()` does it on a timer; this runs it once.
   */
  pruneCommandResults(options: PruneCommandResultsOptions = {}): Promise<number> {
    return pruneCommandResults(this.host.db, options);
  }
}
