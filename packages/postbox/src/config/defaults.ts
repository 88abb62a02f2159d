/**
 * Every default Postbox uses, in one frozen place. Options and environment variables override
 * these; nothing else in the code base holds a default of its own.
 */
export const defaults = Object.freeze({
  /** Embedded PGlite data directory used when no DATABASE_URL is given. */
  dataDir: '.postbox-data',
  /** LISTEN/NOTIFY channel that carries the topic of each committed publish. */
  notifyChannel: 'postbox',
  /** Largest serialised payload accepted by the outbox (seed 002 used 10 MB; 1 MiB keeps rows lean). */
  payloadLimitBytes: 1_048_576,
  /** Longest topic, type or group name, in characters. */
  maxNameLength: 200,
  /** Longest message key, in characters. */
  maxKeyLength: 1_000,
  /** Longest header value, in characters. */
  maxHeaderValueLength: 4_000,
  /** Most custom headers on one message. */
  maxHeaderCount: 64,
  /** Schema version assumed when a message does not say. */
  schemaVersion: 1,
  consumer: Object.freeze({
    /** Messages read per batch. */
    batchSize: 1_000,
    /** Fallback poll when no NOTIFY arrives (a commit that holds back the watermark does not notify). */
    pollIntervalMs: 500,
    /** How long a group's lease lasts without renewal; a dead process blocks its group at most this long. */
    leaseTtlMs: 15_000,
    /** First delay after a failed batch; doubles up to maxRetryDelayMs. */
    retryDelayMs: 250,
    maxRetryDelayMs: 30_000,
    /** Where a new group starts. */
    startFrom: 'earliest' as 'earliest' | 'latest',
  }),
  pool: Object.freeze({
    /** Seed 000's connection tuning: limit, idle timeout and lifetime. */
    max: 10,
    idleTimeoutMs: 30_000,
    maxLifetimeMs: 300_000,
    connectionTimeoutMs: 10_000,
  }),
  migrations: Object.freeze({
    /** How long `migrate` waits for another process that holds the migration lock. */
    lockTimeoutMs: 60_000,
  }),
  cleanup: Object.freeze({
    /** Seed 001's OUTBOX_CLEANUP_* settings: retention of plain topics. Off unless asked for. */
    enabled: false,
    intervalMs: 86_400_000,
    afterDays: 7,
    /** Rows deleted per statement, so retention never holds long locks. */
    batchSize: 5_000,
  }),
  zombies: Object.freeze({
    /** Ephemeral groups not seen for this long are deleted by cleanup. */
    staleAfterMs: 86_400_000,
    intervalMs: 3_600_000,
  }),
  /** How long stop() waits for in-flight handlers before giving up on them. */
  shutdownDeadlineMs: 10_000,
  logLevel: 'info' as 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent',
});

export type Defaults = typeof defaults;
