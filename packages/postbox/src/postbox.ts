import { defaults } from './config/defaults.js';
import { loadEnvConfig, type PostboxEnvConfig } from './config/env.js';
import { Consumer, type ConsumerOptions } from './consumers/consumer.js';
import { type RepartitionResult, repartitionGroup } from './consumers/repartition.js';
import { deleteGroup, type GroupStatus, groupStatuses, type LogStatus, logStatus } from './consumers/status.js';
import { cleanupZombieGroups } from './consumers/zombies.js';
import {
  type DeadLetterFilter,
  deadLetterCounts,
  discardDeadLetters,
  getDeadLetter,
  listDeadLetters,
  retryDeadLetters,
} from './deadletters/dead-letter-store.js';
import { PostboxError, ValidationError } from './errors/postbox-error.js';
import { pruneBatchSize, pruneCommandResults } from './eventstore/command-results.js';
import { EventStore, type EventStoreOptions } from './eventstore/event-store.js';
import { applyRetention, type RetentionOptions } from './log/retention.js';
import { createLogger, type Logger, silentLogger } from './observability/logger.js';
import { enqueue } from './outbox/enqueue.js';
import type { OutgoingMessage } from './outbox/outgoing-message.js';
import { assertSchemaCurrent, migrate } from './schema/migrator.js';
import type { CallerTransaction, Database, Executor } from './sql/database.js';
import { openDatabase } from './sql/open-database.js';

export interface PostboxOptions {
  /** An open database; otherwise one is opened from databaseUrl, or embedded PGlite at dataDir. */
  database?: Database;
  databaseUrl?: string;
  /** PGlite data directory when no URL is given; `memory` for an in-memory database. */
  dataDir?: string;
  pool?: Partial<PostboxEnvConfig['pool']>;
  /**
   * `auto` applies missing migrations at start-up; `check` refuses to run unless the schema is
   * current. Defaults to `auto` on embedded PGlite and `check` on a server.
   */
  migrate?: 'auto' | 'check';
  payloadLimitBytes?: number;
  logger?: Logger;
  /** Defaults for every consumer this instance creates; each consumer's own options win. */
  consumerDefaults?: Pick<ConsumerOptions, 'batchSize' | 'pollIntervalMs' | 'retryDelayMs' | 'leaseTtlMs'>;
}

export interface MaintenanceOptions {
  /** Topic retention (OUTBOX_CLEANUP_*). */
  retention?: { intervalMs: number; olderThanMs: number; topics?: readonly string[] };
  /** Zombie clean-up of ephemeral groups. */
  zombies?: { intervalMs: number; olderThanMs: number };
  /**
   * Deleting the event store's command results past their time to live. On unless `false`; the
   * interval and batch size default to defaults.eventStore.commandResultPrune*.
   */
  commandResults?: { intervalMs?: number; batchSize?: number } | false;
}

type MaintenanceJob = 'retention' | 'zombie-cleanup' | 'command-results';

/** The entry point: the outbox, consumer groups and maintenance over one database. */
export class Postbox {
  private readonly consumers = new Set<Consumer>();
  private readonly timers = new Map<MaintenanceJob, NodeJS.Timeout>();
  private closed = false;

  private constructor(
    readonly db: Database,
    private readonly ownsDatabase: boolean,
    readonly payloadLimitBytes: number,
    readonly logger: Logger,
    private readonly consumerDefaults: PostboxOptions['consumerDefaults'],
  ) {}

  static async create(options: PostboxOptions = {}): Promise<Postbox> {
    const payloadLimitBytes = options.payloadLimitBytes ?? defaults.payloadLimitBytes;
    if (!Number.isSafeInteger(payloadLimitBytes) || payloadLimitBytes <= 0) {
      throw new ValidationError(
        'POSTBOX_ERR_BAD_OPTION',
        `payloadLimitBytes must be a positive integer (got ${String(payloadLimitBytes)}).`,
      );
    }
    const logger = options.logger ?? silentLogger;
    const db =
      options.database ??
      (await openDatabase({
        url: options.databaseUrl,
        dataDir: options.dataDir ?? defaults.dataDir,
        pool: options.pool,
        onError: (error) => logger.warn({ err: error }, 'database connection error'),
      }));
    try {
      const mode = options.migrate ?? (db.kind === 'pglite' ? 'auto' : 'check');
      if (mode === 'auto') await migrate(db);
      else await assertSchemaCurrent(db);
    } catch (error) {
      if (!options.database) await db.close();
      throw error;
    }
    return new Postbox(db, !options.database, payloadLimitBytes, logger, options.consumerDefaults);
  }

  /**
   * Settings from the environment: DATABASE_URL or TIMESCALE_URI, the pool, the payload limit,
   * consumer batch size, interval and retry delay (OUTBOX_*), and retention (OUTBOX_CLEANUP_*).
   */
  static async fromEnv(overrides: PostboxOptions = {}, env: Record<string, string | undefined> = process.env): Promise<Postbox> {
    const config = loadEnvConfig(env);
    const postbox = await Postbox.create({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      pool: config.pool,
      payloadLimitBytes: config.payloadLimitBytes,
      logger: createLogger({ level: config.logLevel, name: config.outbox.serviceName }),
      consumerDefaults: {
        batchSize: config.outbox.batchSize,
        pollIntervalMs: config.outbox.intervalMs,
        retryDelayMs: config.outbox.retryDelayMs,
      },
      ...overrides,
    });
    postbox.startMaintenance(
      config.cleanup.enabled
        ? { retention: { intervalMs: config.cleanup.intervalMs, olderThanMs: config.cleanup.afterDays * 86_400_000 } }
        : {},
    );
    return postbox;
  }

  /** Writes messages inside the caller's open transaction (a `pg` client after BEGIN, a PGlite transaction...). */
  enqueue(tx: CallerTransaction | Executor, messages: OutgoingMessage | readonly OutgoingMessage[]): Promise<string[]> {
    this.assertOpen();
    return enqueue(tx, messages, { payloadLimitBytes: this.payloadLimitBytes });
  }

  /** Publishes in a transaction of its own, for code that has no business write to pair it with. */
  publish(messages: OutgoingMessage | readonly OutgoingMessage[]): Promise<string[]> {
    return this.transaction((tx) => this.enqueue(tx, messages));
  }

  transaction<T>(fn: (tx: Executor) => Promise<T>): Promise<T> {
    this.assertOpen();
    return this.db.transaction(fn);
  }

  /** Creates a consumer for a group; call `start()` on it. It is stopped by `close()`. */
  consumer(options: ConsumerOptions): Consumer {
    this.assertOpen();
    const consumer = new Consumer(
      this.db,
      { logger: this.logger, ...this.consumerDefaults, ...options },
      { payloadLimitBytes: this.payloadLimitBytes },
    );
    this.consumers.add(consumer);
    return consumer;
  }

  status(): Promise<LogStatus> {
    return logStatus(this.db);
  }

  groupStatus(group?: string): Promise<GroupStatus[]> {
    return groupStatuses(this.db, group);
  }

  deleteGroup(group: string): Promise<boolean> {
    return deleteGroup(this.db, group);
  }

  /**
   * Gives a group a new number of partitions, while no process runs it. Each new partition starts
   * at the earliest checkpoint of the old ones: nothing is skipped, and the messages between that
   * and the other old checkpoints are delivered again.
   */
  repartitionGroup(group: string, partitions: number): Promise<RepartitionResult> {
    return repartitionGroup(this.db, group, partitions);
  }

  /** Dead letters: list, show, retry (redelivered to their group only) and discard. */
  get deadLetters() {
    const db = this.db;
    return {
      list: (filter: DeadLetterFilter = {}) => listDeadLetters(db, filter),
      get: (id: string) => getDeadLetter(db, id),
      retry: (target: { id: string } | DeadLetterFilter) => retryDeadLetters(db, target),
      discard: (target: { id: string } | DeadLetterFilter) => discardDeadLetters(db, target),
      counts: () => deadLetterCounts(db),
    };
  }

  /** The event store on this instance's log: streams, snapshots, command handlers and projections. */
  eventStore(options: EventStoreOptions = {}): EventStore {
    this.assertOpen();
    return new EventStore(this, options);
  }

  /** True once close() was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  cleanupZombieGroups(olderThanMs: number = defaults.zombies.staleAfterMs): Promise<string[]> {
    return cleanupZombieGroups(this.db, olderThanMs);
  }

  applyRetention(options: RetentionOptions): Promise<number> {
    return applyRetention(this.db, options);
  }

  /**
   * Runs maintenance on timers until close(): retention and zombie clean-up when given, and the
   * pruning of expired command results unless `commandResults: false`. A job named again is
   * restarted with its new settings; a run still going when the next is due is not overlapped.
   */
  startMaintenance(options: MaintenanceOptions = {}): void {
    this.assertOpen();
    const { retention, zombies, commandResults } = options;
    const jobs: [MaintenanceJob, number, () => Promise<unknown>][] = [];
    if (retention) jobs.push(['retention', retention.intervalMs, () => this.applyRetention(retention)]);
    if (zombies) jobs.push(['zombie-cleanup', zombies.intervalMs, () => this.cleanupZombieGroups(zombies.olderThanMs)]);
    if (commandResults !== false) {
      const batchSize = pruneBatchSize({ batchSize: commandResults?.batchSize });
      const intervalMs = commandResults?.intervalMs ?? defaults.eventStore.commandResultPruneIntervalMs;
      jobs.push(['command-results', intervalMs, () => pruneCommandResults(this.db, { batchSize })]);
    }
    for (const [name, intervalMs] of jobs) {
      if (!Number.isSafeInteger(intervalMs) || intervalMs <= 0) {
        throw new ValidationError(
          'POSTBOX_ERR_BAD_OPTION',
          `The ${name} interval must be a positive whole number of milliseconds (got ${String(intervalMs)}).`,
          {
            option: 'intervalMs',
          },
        );
      }
    }
    if (commandResults === false) this.stopJob('command-results');
    for (const [name, intervalMs, job] of jobs) this.every(name, intervalMs, job);
  }

  private stopJob(name: MaintenanceJob): void {
    clearInterval(this.timers.get(name));
    this.timers.delete(name);
  }

  private every(name: MaintenanceJob, intervalMs: number, job: () => Promise<unknown>): void {
    this.stopJob(name);
    let running = false;
    const timer = setInterval(() => {
      if (running || this.closed) return;
      running = true;
      job()
        .then(
          (result) => this.logger.info({ job: name, result }, 'maintenance job ran'),
          (error) => this.logger.error({ err: error, job: name }, 'maintenance job failed'),
        )
        .finally(() => {
          running = false;
        });
    }, intervalMs);
    timer.unref();
    this.timers.set(name, timer);
  }

  /** Stops every consumer (letting in-flight batches commit within the deadline), then closes the database. */
  async close(deadlineMs: number = defaults.shutdownDeadlineMs): Promise<boolean> {
    if (this.closed) return true;
    this.closed = true;
    for (const timer of this.timers.values()) clearInterval(timer);
    this.timers.clear();
    const results = await Promise.all([...this.consumers].map((consumer) => consumer.stop(deadlineMs)));
    if (this.ownsDatabase) await this.db.close();
    return results.every(Boolean);
  }

  private assertOpen(): void {
    if (this.closed) throw new PostboxError('POSTBOX_ERR_CLOSED', 'This Postbox instance is closed.');
  }
}
