export { defaults } from './config/defaults.js';
export { parseDuration } from './config/duration.js';
export { loadEnvConfig, type PostboxEnvConfig } from './config/env.js';
export {
  type BatchContext,
  type BetweenBatches,
  type BetweenBatchesContext,
  Consumer,
  type ConsumerOptions,
  type ConsumerState,
} from './consumers/consumer.js';
export type { StartFrom } from './consumers/group-store.js';
export type { RepartitionResult } from './consumers/repartition.js';
export type { GroupReset, PartitionReset, ResetGroupOptions, ResetGroupsOptions, ResetTarget } from './consumers/reset.js';
export type { GroupStatus, LogStatus, MemberStatus, PartitionStatus, TopicStatus } from './consumers/status.js';
export { cleanupZombieGroups } from './consumers/zombies.js';
export {
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterStatus,
  deadLetterCounts,
  discardDeadLetters,
  getDeadLetter,
  listDeadLetters,
  retryDeadLetters,
} from './deadletters/dead-letter-store.js';
export { type DoctorOptions, type DoctorResult, type DoctorVerdict, doctorFailed, runDoctor } from './diagnosis/doctor.js';
export { type ErrorCode, errorCodes } from './errors/codes.js';
export {
  ConfigError,
  DecodeError,
  HandlerError,
  isPostboxError,
  LeaseLostError,
  PostboxError,
  SchemaVersionError,
  ValidationError,
} from './errors/postbox-error.js';
export {
  type AggregateDefinition,
  defineAggregate,
  type Evolver,
  type SnapshotOptions,
  type SnapshotPolicy,
} from './eventstore/aggregate.js';
export {
  type AggregateResult,
  type AggregateStreamOptions,
  type AsOf,
  aggregateStream,
  type SnapshotUse,
} from './eventstore/aggregate-stream.js';
export { type AppendOptions, type AppendResult, appendToStream } from './eventstore/append-to-stream.js';
export {
  CommandHandler,
  type CommandHandlerOptions,
  type CommandResult,
  type CommandRetryOptions,
  type HandleOptions,
} from './eventstore/command-handler.js';
export { type PruneCommandResultsOptions, pruneCommandResults } from './eventstore/command-results.js';
export { ConcurrencyError } from './eventstore/concurrency-error.js';
export type { Decider } from './eventstore/decider.js';
export type { EventData, EventLike, EventRecord, ExpectedVersion, RecordedEvent, StreamState } from './eventstore/event.js';
export { EventStore, type EventStoreOptions } from './eventstore/event-store.js';
export { type CommandStatus, EventStoreMetrics } from './eventstore/event-store-metrics.js';
export { type ReadAllOptions, type ReadAllResult, readAll } from './eventstore/read-all.js';
export { type ReadStreamOptions, readStream, type StreamReadResult } from './eventstore/read-stream.js';
export {
  type CreateSnapshotsOptions,
  type CreateSnapshotsResult,
  createSnapshots,
  type SnapshotJob,
  startSnapshotJob,
} from './eventstore/snapshot-job.js';
export { deleteSnapshots, loadSnapshot, type Snapshot } from './eventstore/snapshot-store.js';
export { categoryOf } from './eventstore/stream-id.js';
export {
  archiveStream,
  getStreamInfo,
  getStreamMetadata,
  restoreStream,
  type StreamInfo,
  setStreamMetadata,
  streamExists,
  tombstoneStream,
} from './eventstore/stream-info.js';
export { StreamStateError, type StreamStateErrorCode } from './eventstore/stream-state-error.js';
export { UpcastError } from './eventstore/upcast-error.js';
export { type Upcaster, Upcasters } from './eventstore/upcasters.js';
export type { LogMessage, MessageHeaders } from './log/message.js';
export { bucketOf, partitionOf, partitionOfBucket } from './log/partition.js';
export { beginningOfLog, comparePositions, type LogPosition } from './log/position.js';
export { type ReadOptions, readAfter } from './log/read.js';
export {
  planRecoveryAfterRestore,
  type RecoveryOptions,
  type RecoveryPlan,
  type RecoveryProgress,
  type RecoveryResult,
  recoverAfterRestore,
} from './log/recover-after-restore.js';
export { applyRetention, type RetentionOptions } from './log/retention.js';
export { describeStoredTransactionId, recoverCommand, type StoredTransactionId } from './log/stored-transaction-id.js';
export type { RemapPlan } from './log/transaction-id-remap.js';
export { assertTransactionIdsCurrent, checkTransactionIds, type TransactionIdCheck } from './log/transaction-ids.js';
export { TransactionIdsBehindError } from './log/transaction-ids-behind-error.js';
export {
  describeHolder,
  holdersWorthShowing,
  type WatermarkHolder,
  watermarkDelayOf,
  watermarkDelaySeconds,
  watermarkHolders,
} from './log/watermark.js';
export { type HealthCheck, type HealthStatus, type ReadinessReport, readiness } from './observability/health.js';
export { createLogger, type Logger, type LoggerOptions } from './observability/logger.js';
export { PostboxMetrics } from './observability/metrics.js';
export { enqueue } from './outbox/enqueue.js';
export { MessageBuilder, messageBuilder } from './outbox/message-builder.js';
export type { OutgoingMessage } from './outbox/outgoing-message.js';
export {
  discardParked,
  listParked,
  type ParkedCount,
  type ParkedFilter,
  type ParkedTarget,
  parkedCounts,
  releaseParked,
} from './parking/parked-admin.js';
export type { ParkedMessage, ParkedStatus } from './parking/parked-message.js';
export { type MaintenanceOptions, Postbox, type PostboxOptions, type TimekeeperMode } from './postbox.js';
export type { InlineProjection, InlineProjectionContext } from './projections/inline-projection.js';
export {
  type AsyncProjection,
  defineProjection,
  type ProjectionContext,
  type ProjectionDefinition,
  projectionGroup,
  type ReadModel,
  type RowsPerEvent,
  versionedTable,
} from './projections/projection.js';
export {
  listProjectionDeadLetters,
  type ProjectionDeadLetter,
  type ProjectionDeadLetterFilter,
} from './projections/projection-dead-letters.js';
export { type ProjectionHealthOptions, projectionHealthChecks } from './projections/projection-health.js';
export { ProjectionRunner, type ProjectionRunnerOptions, type ProjectionRunnerState } from './projections/projection-runner.js';
export { type ProjectionStatus, projectionStatuses } from './projections/projection-status.js';
export {
  listProjections,
  type ProjectionRecord,
  type ProjectionState,
  pauseProjection,
  requestRebuild,
  resumeProjection,
} from './projections/projection-store.js';
export { type Row, type UpsertOptions, upsertRows } from './projections/upsert-rows.js';
export { type ChainOptions, chainOf, compose, type MiddlewareName, middlewareOrder } from './router/compose.js';
export type { Handler, HandlerContext, Middleware, Outcome, OutcomeHandler } from './router/handler.js';
export { type LogSourceOptions, logSource } from './router/log-source.js';
export { correlation } from './router/middleware/correlation.js';
export { deadLetter } from './router/middleware/dead-letter.js';
export { dedupe, pruneInbox } from './router/middleware/dedupe.js';
export { type ParkedAttempt, type Parking, park } from './router/middleware/park.js';
export { recover } from './router/middleware/recover.js';
export { backoffDelay, type RetryOptions, retry } from './router/middleware/retry.js';
export { timeout } from './router/middleware/timeout.js';
export type { OnDeadLetter, ParkOptions } from './router/parking/park-options.js';
export type { Deliver, RouteSource, RouteSourceFactory, RouteSourceSettings, SourceBatchContext } from './router/route-source.js';
export type { MessageSource, RoutedMessage } from './router/routed-message.js';
export { type RouteOptions, Router, type RouterOptions, type RouterState } from './router/router.js';
export { exitOnSignals, type SignalOptions } from './router/shutdown.js';
export {
  defineMigrationSet,
  latestVersion,
  loadMigrations,
  type Migration,
  type MigrationSet,
  postboxMigrations,
} from './schema/migrations.js';
export {
  assertSchemaCurrent,
  type MigrateOptions,
  type MigrateResult,
  migrate,
  migrationsAsSql,
  schemaVersion,
} from './schema/migrator.js';
export { redactUrl } from './sql/connection-secrets.js';
export type { CallerTransaction, Database, Executor, QueryResult } from './sql/database.js';
export { asExecutor } from './sql/database.js';
export { type OpenDatabaseOptions, openDatabase } from './sql/open-database.js';
export { pgliteDatabase } from './sql/pglite-database.js';
export { type PostgresOptions, postgresDatabase } from './sql/postgres-database.js';
export type { MissedPolicy } from './time/missed-ticks.js';
export type { ScheduleDefinition, ScheduleMessage } from './time/schedule-definition.js';
export type { Schedule, ScheduleStatus } from './time/schedule-store.js';
export type { ScheduledFilter, ScheduledMessage } from './time/scheduled-messages.js';
export { tickMessageId } from './time/tick-id.js';
export type { TimeStatus } from './time/time-status.js';
export { Timekeeper, type TimekeeperState } from './time/timekeeper.js';
export type { TimekeeperOptions } from './time/timekeeper-options.js';
