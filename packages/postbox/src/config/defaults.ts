/**
 * Every default Postbox uses, in one frozen place. Options and environment variables override
 * these; nothing else in the code base holds a default of its own.
 */
export const defaults = Object.freeze({
  /** Embedded PGlite data directory used when no DATABASE_URL is given. */
  dataDir: '.postbox-data',
  /** LISTEN/NOTIFY channel that carries the topic of each committed publish. */
  notifyChannel: 'postbox',
  /** LISTEN/NOTIFY channel that carries the name of a group whose lease was just handed back. */
  leaseChannel: 'postbox_leases',
  /** LISTEN/NOTIFY channel that tells routers and projections that dead letters were asked to be retried. */
  deadLetterChannel: 'postbox_dead_letters',
  /** LISTEN/NOTIFY channel that carries the name of a group whose parked messages were released from outside its readers. Part of the schema. */
  parkedChannel: 'postbox_parked',
  /** Dead letters redelivered in one transaction when they are retried. */
  redeliveryBatchSize: 100,
  /** Largest serialised payload accepted by the outbox (1 MiB keeps rows lean; raise it per instance). */
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
  /**
   * Every message falls in one of this many buckets, by its key; a partitioned group splits them
   * among its partitions, so this is also the most partitions a group can have. Part of the schema.
   */
  partitionBuckets: 64,
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
    /** Partitions of a new group: one keeps a group on one process at a time, with standbys. */
    partitions: 1,
    /** Expired member rows older than this many lease times are deleted by the members that remain. */
    forgetMembersAfterLeases: 20,
  }),
  groupReset: Object.freeze({
    /** How long a reset told to wait (`wait: true`, `--wait` without a duration) waits for the processes running the group to stop. */
    waitMs: 60_000,
    /** How often a waiting reset looks again whether the group is free. */
    pollIntervalMs: 250,
  }),
  pool: Object.freeze({
    /** Connection pool: limit, idle timeout and lifetime of a connection. */
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
    /** OUTBOX_CLEANUP_*: retention of plain topics. Off unless asked for. */
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
  router: Object.freeze({
    /** Attempts per message before it goes to dead letters (OUTBOX_RETRY_ATTEMPTS). */
    maxAttempts: 3,
    initialRetryDelayMs: 200,
    maxRetryDelayMs: 10_000,
    retryMultiplier: 2,
    /** The share of each retry delay that is randomised, so retries of many messages spread out. */
    retryJitter: 0.2,
    /** Keys handled in parallel within a batch (never two messages of one key at once). */
    concurrency: 8,
    /** How long the dedupe inbox remembers a handled message id. */
    dedupeRetentionMs: 7 * 86_400_000,
    /** How often the router looks for dead letters asked to be retried. */
    redeliveryIntervalMs: 1_000,
    /** A route's `park` options: a message that keeps failing waits out of its batch, and only its key waits with it. */
    park: Object.freeze({
      /** Delay before the first attempt from parking; each further one waits `multiplier` times longer, up to maxDelayMs. */
      initialDelayMs: 1_000,
      maxDelayMs: 300_000,
      multiplier: 2,
      /** 0 to 1: the share of each delay that is randomised, so that many parked keys do not come due together. */
      jitter: 0.2,
      /** Attempts from parking before the message goes to dead letters; null for no limit (maxAgeMs must then be set). */
      maxAttempts: 20 as number | null,
      /** Time since its first failure after which a parked message goes to dead letters; null for no limit. */
      maxAgeMs: 86_400_000 as number | null,
      /** What the later messages of a dead-lettered message's key do: handled at once, or held until the dead letter is retried or discarded. */
      onDeadLetter: 'release' as 'release' | 'hold',
      /** Parked messages a partition handles between two of its batches; the rest wait for the next gap. */
      batchSize: 100,
      /** How often a partition looks at its parked messages when nothing told it of a change (a missed NOTIFY). */
      pollIntervalMs: 5_000,
      /** Parked messages listed when no limit is given. */
      listLimit: 100,
    }),
  }),
  relay: Object.freeze({
    /** OUTBOX_ENABLED: a relay configured from the environment runs unless it is false. */
    enabled: true,
    /** The relay's consumer group; with OUTBOX_SERVICE_NAME it is `<service>-relay`. */
    group: 'postbox-relay',
    groupSuffix: '-relay',
    /** KafkaJS client id when neither KAFKA_CLIENT_ID nor OUTBOX_SERVICE_NAME is set. */
    clientId: 'postbox',
    /** Messages read from the log and sent to Kafka in one produce call. */
    batchSize: 1_000,
    /** Fallback poll when no NOTIFY arrives. */
    pollIntervalMs: 500,
    /** First delay before a failed batch is sent again; doubles up to maxRetryDelayMs. */
    retryDelayMs: 250,
    maxRetryDelayMs: 30_000,
    /** OUTBOX_OPERATION_TIMEOUT: the longest one batch's send may take, broker acknowledgement included. */
    sendTimeoutMs: 25_000,
    /** OUTBOX_MAX_RETRIES: KafkaJS retries within one send, before the batch counts as failed. */
    sendRetries: 3,
    /** KafkaJS's first retry delay within one send; it grows up to sendRetryMaxDelayMs. */
    sendRetryDelayMs: 100,
    sendRetryMaxDelayMs: 5_000,
    /** KafkaJS's idempotent producer on a real cluster (librdkafka's mock cluster refuses it). */
    idempotent: true,
    /** More messages than this waiting to be relayed makes health() report degraded. */
    maxPendingMessages: 10_000,
  }),
  kafkaSource: Object.freeze({
    /** KafkaJS client id when KAFKA_CLIENT_ID is not set. */
    clientId: 'postbox',
    /** Where a new Kafka consumer group starts; a group with committed offsets resumes from them. */
    startFrom: 'earliest' as 'earliest' | 'latest',
    /** Messages handed to the router in one delivery (one transaction in transactional mode). */
    maxBatchSize: 1_000,
    /** Bytes one fetch may return, over all partitions, and per partition. */
    maxBytes: 10_485_760,
    maxBytesPerPartition: 1_048_576,
    /** How long the broker holds a fetch open while it has nothing new. */
    maxWaitTimeMs: 500,
    /** Partitions whose fetched batches are handled at the same time; their chunks go to the router in one delivery. */
    partitionsConsumedConcurrently: 4,
    /** Messages fetched but not yet committed above which partitions stop fetching; they resume at half. */
    highWaterMark: 10_000,
    /** A delivery running longer than this pauses fetching of its partition until it finishes. */
    slowDeliveryMs: 5_000,
    /** The group coordinator drops a member it has not heard from for this long. */
    sessionTimeoutMs: 30_000,
    /** How often a member heartbeats, between fetches and during long deliveries. */
    heartbeatIntervalMs: 3_000,
    /** Larger message values go to dead letters undecoded. */
    maxMessageBytes: 1_048_576,
    /** Bytes of an undecodable value kept in its dead letter (as text, or base64 when not UTF-8). */
    rawPreviewBytes: 4_096,
    /** KafkaJS retries of a failed delivery (refetching from the last resolved offset) before the consumer restarts. */
    retries: 8,
    initialRetryDelayMs: 300,
    maxRetryDelayMs: 10_000,
    /** How long start() waits for the first fetch, which fixes where a new `latest` group begins. */
    readyTimeoutMs: 10_000,
    /**
     * After an error KafkaJS does not retry (a rejected group request, say), the source builds a new
     * consumer after this delay, doubling on each failed restart up to maxRestartDelayMs.
     */
    restartDelayMs: 1_000,
    maxRestartDelayMs: 60_000,
    /** 0 to 1: the share of each restart delay that is randomised, so that members do not restart in step. */
    restartJitter: 0.2,
  }),
  eventStore: Object.freeze({
    /** Events read per query when a stream is replayed or read whole. */
    readBatchSize: 5_000,
    /** Attempts of a command in all (the first included) while appends meet a concurrency conflict. */
    commandMaxAttempts: 10,
    commandRetryInitialDelayMs: 5,
    commandRetryMaxDelayMs: 1_000,
    commandRetryMultiplier: 2,
    /** The share of each command retry delay that is randomised, so that contenders spread out. */
    commandRetryJitter: 0.5,
    /** How long a command's result is kept by command id, so that a repeated command returns it. */
    commandResultTtlMs: 86_400_000,
    /** How often maintenance deletes command results past their time to live. */
    commandResultPruneIntervalMs: 3_600_000,
    /** Expired command results deleted per statement. */
    commandResultPruneBatchSize: 5_000,
    /** The schema version of snapshots when an aggregate does not give one. */
    snapshotSchemaVersion: 1,
    /** Streams whose snapshot is this many events behind (or missing) get a new one from the bulk job. */
    snapshotEvery: 100,
    /** Streams looked at per query by the bulk snapshot job. */
    snapshotJobBatchSize: 100,
    snapshotJobIntervalMs: 3_600_000,
    projections: Object.freeze({
      /** Events read per batch; a batch's read-model writes commit with its checkpoint. */
      batchSize: 1_000,
      /** Consecutive failed batches after which a projection shows `faulted` (it keeps retrying). */
      maxFailures: 5,
      /** How often a running projection reads its row for pause, resume and rebuild (NOTIFY also wakes it). */
      controlIntervalMs: 1_000,
      /** A rebuild swaps in the new version once its group is at most this many events behind. */
      swapMaxLagEvents: 0,
      /** A projection further behind than this reports degraded health. */
      maxLagEvents: 10_000,
      /** How often a projection looks for its dead letters asked to be retried. */
      redeliveryIntervalMs: 1_000,
    }),
  }),
  health: Object.freeze({
    /** A consumer group further behind than this makes /health/ready report degraded. */
    maxLagMessages: 10_000,
    /**
     * An open writing transaction older than this, anywhere on the server, makes /health/ready
     * report degraded: every reader of the log waits for it to end.
     */
    maxWatermarkDelaySeconds: 30,
    /**
     * A scheduled message or a schedule's tick overdue by more than this makes /health/ready report
     * degraded: no process is moving them into the log. Longer than a timekeeper's takeover.
     */
    maxScheduledOverdueSeconds: 60,
    /** The ops server (/metrics, /health/*) binds to loopback unless told otherwise. */
    host: '127.0.0.1',
    port: 9464,
  }),
  timekeeper: Object.freeze({
    /** The lease that one process per database holds to run the timekeeper. Part of the schema. */
    leaseName: 'timekeeper',
    /** LISTEN/NOTIFY channel that wakes the timekeeper: work due before it next looks, or its lease handed back. Part of the schema. */
    channel: 'postbox_timekeeper',
    /** How long the timekeeper's lease lasts without renewal: after a crash, another process takes over within about this long. */
    leaseTtlMs: 15_000,
    /** The longest the lease holder sleeps with nothing due: its fallback poll, and how often it renews the lease. */
    pollIntervalMs: 1_000,
    /** How often a process without the lease tries to take it; a holder that stops hands it over at once. */
    standbyIntervalMs: 5_000,
    /** Due messages moved into the log per transaction. */
    moveBatchSize: 2_000,
    /** Schedules whose due ticks are appended per transaction. */
    scheduleBatchSize: 100,
    /** A tick found later than this was missed (nothing ran at its time): its schedule's `missed` policy decides. */
    missedTickGraceMs: 60_000,
    /** `missed: 'all'` appends at most this many missed ticks of a schedule, the latest ones, and warns about the rest. */
    maxCatchUpTicks: 1_000,
    /** First delay after a failed round; doubles up to maxRetryDelayMs. */
    retryDelayMs: 250,
    maxRetryDelayMs: 30_000,
    /** Scheduled messages listed when no limit is given. */
    listLimit: 100,
    /** The time zone of a schedule that names none. */
    timeZone: 'UTC',
    /** What a schedule does with missed ticks when it does not say. */
    missed: 'skip' as 'skip' | 'last' | 'all',
  }),
  watermark: Object.freeze({
    /**
     * `postbox status` names the open writing transactions older than this. Readers poll every
     * consumer.pollIntervalMs, so a transaction of a few seconds already holds them back several
     * polls, while shorter ones are the ordinary traffic of a busy server and would only be noise.
     */
    showHoldersAfterSeconds: 5,
    /** Characters of a holder's last query that are kept; enough to recognise it, never a whole payload. */
    queryPreviewChars: 200,
  }),
  doctor: Object.freeze({
    /** An open writing transaction older than this is a warning, and older than the second a failure. */
    longTransactionWarnSeconds: 30,
    longTransactionFailSeconds: 300,
    /** A group whose oldest unhandled message has waited longer than this is stalled. */
    stalledAfterSeconds: 300,
    /** A log of at least this many rows that was never vacuumed or analysed is a warning. */
    autovacuumMinRows: 100_000,
    /** The read plan is checked on the reads of at most this many consumer groups. */
    planGroups: 10,
  }),
  recovery: Object.freeze({
    /** Transaction ids used up per statement while the server's ids are moved past the remapped log. */
    transactionIdsPerRound: 10_000,
    /** Ids used up beyond the remapped log's highest, for messages written while the recovery waits for its locks. */
    transactionIdMargin: 1_000,
    /** How long `recover-after-restore --wait` waits for running groups and older transactions to end. */
    waitMs: 300_000,
    /** How often a waiting recovery looks again. */
    pollIntervalMs: 500,
    /** How long the recovery waits for its locks on the log before it steps back, so that it never queues writers for long. */
    lockTimeoutMs: 5_000,
    /** Times the recovery plans again when messages written meanwhile need more ids than it used up. */
    maxAttempts: 5,
  }),
  opsConsole: Object.freeze({
    /** The largest request body a console route reads (413 above it): its bodies are a few names. */
    bodyLimitBytes: 65_536,
    /** Where registerConsole mounts the page and its API on an application's Fastify. */
    prefix: '/ops',
    /** `postbox ui` listens here unless --host and --port say otherwise. */
    host: '127.0.0.1',
    port: 4680,
    /** A console token shorter than this is refused. */
    minTokenLength: 8,
    /** How often the sampler records each group's lag and the log's and groups' rates, for the page's charts. */
    sampleIntervalMs: 5_000,
    /** How far back the samples reach: older ones are dropped (15 minutes at one sample every 5 s is 180 samples). */
    sampleWindowMs: 900_000,
    /** Groups recorded per sample, the furthest behind first: bounds the memory of a database with many groups. */
    maxSampledGroups: 100,
    /** Dead letters listed unless `limit` says otherwise, and the most one request may ask for. */
    deadLetterLimit: 100,
    maxDeadLetterLimit: 1_000,
    /** Parked messages listed unless `limit` says otherwise, and the most one request may ask for. */
    parkedLimit: 100,
    maxParkedLimit: 1_000,
    /** Messages waiting for their time listed unless `limit` says otherwise (the soonest due first), and the most one request may ask for. */
    scheduledLimit: 100,
    maxScheduledLimit: 1_000,
    /** How often the page asks for fresh numbers while it is visible. */
    pageRefreshMs: 2_000,
  }),
  /** How long stop() waits for in-flight handlers before giving up on them. */
  shutdownDeadlineMs: 10_000,
  /**
   * exitOnSignals exits 1 when the whole shutdown has not settled after this long: a handler that
   * ignores its abort signal, or a close that never returns, must not keep the process alive.
   */
  shutdownHardLimitMs: 15_000,
  logLevel: 'info' as 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent',
});

export type Defaults = typeof defaults;
