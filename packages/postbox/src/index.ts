export { defaults } from './config/defaults.js';
export { parseDuration } from './config/duration.js';
export { loadEnvConfig, type PostboxEnvConfig, redactUrl } from './config/env.js';
export { type BatchContext, Consumer, type ConsumerOptions, type ConsumerState } from './consumers/consumer.js';
export type { StartFrom } from './consumers/group-store.js';
export type { GroupStatus, LogStatus, TopicStatus } from './consumers/status.js';
export { cleanupZombieGroups } from './consumers/zombies.js';
export { type ErrorCode, errorCodes } from './errors/codes.js';
export {
  ConfigError,
  isPostboxError,
  LeaseLostError,
  PostboxError,
  SchemaVersionError,
  ValidationError,
} from './errors/postbox-error.js';
export type { LogMessage, MessageHeaders } from './log/message.js';
export { beginningOfLog, comparePositions, type LogPosition } from './log/position.js';
export { type ReadOptions, readAfter } from './log/read.js';
export { applyRetention, type RetentionOptions } from './log/retention.js';
export { createLogger, type Logger } from './observability/logger.js';
export { enqueue } from './outbox/enqueue.js';
export { MessageBuilder, messageBuilder } from './outbox/message-builder.js';
export type { OutgoingMessage } from './outbox/outgoing-message.js';
export { type MaintenanceOptions, Postbox, type PostboxOptions } from './postbox.js';
export { latestVersion } from './schema/migrations.js';
export { assertSchemaCurrent, type MigrateResult, migrate, migrationsAsSql, schemaVersion } from './schema/migrator.js';
export type { CallerTransaction, Database, Executor, QueryResult } from './sql/database.js';
export { asExecutor } from './sql/database.js';
export { type OpenDatabaseOptions, openDatabase } from './sql/open-database.js';
export { pgliteDatabase } from './sql/pglite-database.js';
export { type PostgresOptions, postgresDatabase } from './sql/postgres-database.js';
