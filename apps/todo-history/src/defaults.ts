/**
 * Every default of the todo history system, in one frozen place. Environment variables and
 * options override these; nothing else in the app holds a default of its own.
 */
export const appDefaults = Object.freeze({
  /** PORT and HOST of the HTTP server (API, page, health and metrics). */
  port: 3000,
  host: '127.0.0.1',
  /** Embedded PGlite data directory used when neither DATABASE_URL nor TIMESCALE_URI is set. */
  dataDir: '.todo-history-data',
  /** The history topic and its consumer group (KAFKA_TOPIC, KAFKA_GROUP_ID). */
  topic: 'todo-history-events',
  groupId: 'todo-consumer-group-go',
  /** Largest HTTP request body, in bytes. */
  bodyLimitBytes: 65_536,
  /** How long shutdown waits for in-flight batches. */
  shutdownDeadlineMs: 10_000,
  /** How long shutdown waits for HTTP requests in flight before it closes the connections left. */
  closeGraceMs: 1_000,
  /** Longest strings the todo API accepts; id, name, user and workspace match the columns of the todo_event_logs table. */
  limits: Object.freeze({
    id: 100,
    name: 255,
    user: 100,
    workspace: 100,
    description: 10_000,
    comment: 2_000,
  }),
  /** Workspace of a group created without one. */
  workspace: 'default',
  history: Object.freeze({
    /**
     * Events read and inserted per batch (one INSERT and one transaction per batch). A backlog drains
     * with a few large transactions; a quiet stream still goes one small batch at a time.
     */
    batchSize: 2_000,
    /**
     * HISTORY_PARTITIONS: partitions of the history consumer's group on the PostgreSQL log, by the
     * event's key (its groupId). Each is read in order, in a transaction of its own, in parallel with
     * the others; the processes running the app share them. Fixed when the group is created.
     */
    partitions: 4,
    /** A history event larger than this, as JSON bytes, goes to dead letters undecoded. */
    maxEventBytes: 65_536,
    /** Native partitioning: daily partitions created this many days ahead of today (UTC). */
    partitionsAheadDays: 7,
    /** How often partition maintenance (and retention, when set) runs after start-up. */
    maintenanceIntervalMs: 3_600_000,
    /** HISTORY_RETENTION_DAYS: unset keeps every partition. */
    retentionDays: undefined as number | undefined,
    /** /health/ready reports degraded when the history consumer is further behind than this. */
    maxLagSeconds: 60,
    maxLagMessages: 10_000,
  }),
  query: Object.freeze({
    defaultLimit: 100,
    maxLimit: 1_000,
  }),
  stream: Object.freeze({
    /** Fallback poll of the live feed when no NOTIFY arrives. */
    pollIntervalMs: 2_000,
    /** A comment line sent this often keeps proxies from closing an idle stream. */
    heartbeatMs: 15_000,
    /** Rows pushed per read; a client far behind catches up over several reads. */
    maxRowsPerPush: 500,
    /** The browser reconnects after this long when the stream drops. */
    retryMs: 2_000,
  }),
  /** OpenTelemetry, loaded only when OTEL_* asks for traces (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_EXPORTER). */
  tracing: Object.freeze({
    /** service.name when neither OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES nor OUTBOX_SERVICE_NAME names the service. */
    serviceName: 'todo-history',
    /** How long shutdown waits, after the rest has stopped, for the last spans to be exported. */
    shutdownTimeoutMs: 5_000,
    /** The OpenTelemetry SDK's own defaults, named in the start-up line when OTEL_* leaves them unset. */
    exporter: 'otlp',
    protocol: 'http/protobuf' as 'grpc' | 'http/protobuf' | 'http/json',
    httpEndpoint: 'http://localhost:4318',
    grpcEndpoint: 'http://localhost:4317',
  }),
  /** The NOTIFY channel the history consumer signals after each batch that stored rows. */
  notifyChannel: 'todo_history_logs',
});

export type AppDefaults = typeof appDefaults;
