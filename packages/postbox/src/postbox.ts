import { defaults } from './config/defaults.js';
import { loadEnvConfig, type PostboxEnvConfig } from './config/env.js';
import { Consumer, type ConsumerOptions } from './consumers/consumer.js';
import { type RepartitionResult, repartitionGroup } from './consumers/repartition.js';
import { type GroupReset, type ResetGroupOptions, type ResetGroupsOptions, resetGroup, resetGroups } from './consumers/reset.js';
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
import { type RecoveryOptions, type RecoveryResult, recoverAfterRestore } from './log/recover-after-restore.js';
import { applyRetention, type RetentionOptions } from './log/retention.js';
import { checkTransactionIds, type TransactionIdCheck } from './log/transaction-ids.js';
import { createLogger, type Logger, silentLogger } from './observability/logger.js';
import { enqueue } from './outbox/enqueue.js';
import type { OutgoingMessage } from './outbox/outgoing-message.js';
import { discardParked, listParked, type ParkedFilter, type ParkedTarget, parkedCounts, releaseParked } from './parking/parked-admin.js';
import { assertSchemaCurrent, migrate } from './schema/migrator.js';
import { asExecutor, type CallerTransaction, type Database, type Executor } from './sql/database.js';
import { openDatabase } from './sql/open-database.js';
import type { ScheduleDefinition } from './time/schedule-definition.js';
import {
  deleteSchedule,
  getSchedule,
  listSchedules,
  pauseSchedule,
  resumeSchedule,
  type Schedule,
  upsertSchedule,
} from './time/schedule-store.js';
import { cancelScheduled, listScheduled, type ScheduledFilter, type ScheduledMessage } from './time/scheduled-messages.js';
import { type TimeStatus, timeStatus } from './time/time-status.js';
import { Timekeeper } from './time/timekeeper.js';
import { resolveTimekeeperOptions, type TimekeeperOptions } from './time/timekeeper-options.js';

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
  /**
   * The timekeeper moves delayed messages and schedule ticks into the log; one process per database
   * runs it at a time while the others stand by. `auto` (the default): this instance competes for it
   * once it runs a consumer (routers, projections and the Kafka relay run consumers), so that any
   * worker keeps time; `on`: from create(); `off`: only after startTimekeeper().
   */
  timekeeper?: TimekeeperMode;
  /** Settings of this instance's timekeeper (lease time, poll, batch sizes, missed-tick grace). */
  timekeeperOptions?: TimekeeperOptions;
}

export type TimekeeperMode = 'auto' | 'on' | 'off';

const timekeeperModes: readonly TimekeeperMode[] = ['auto', 'on', 'off'];

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
  private timekeeperInstance: Timekeeper | undefined;
  private closed = false;

  private constructor(
    readonly db: Database,
    private readonly ownsDatabase: boolean,
    readonly payloadLimitBytes: number,
    readonly logger: Logger,
    private readonly consumerDefaults: PostboxOptions['consumerDefaults'],
    private readonly timekeeperMode: TimekeeperMode,
    private readonly timekeeperOptions: TimekeeperOptions,
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
    const timekeeperMode = options.timekeeper ?? 'auto';
    if (!timekeeperModes.includes(timekeeperMode)) {
      throw new ValidationError(
        'POSTBOX_ERR_BAD_OPTION',
        `timekeeper must be one of ${timekeeperModes.join(', ')} (got ${String(timekeeperMode)}).`,
        {
          option: 'timekeeper',
        },
      );
    }
    const timekeeperOptions = { logger, ...options.timekeeperOptions };
    resolveTimekeeperOptions(timekeeperOptions);
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
    const postbox = new Postbox(
      db,
      !options.database,
      payloadLimitBytes,
      logger,
      options.consumerDefaults,
      timekeeperMode,
      timekeeperOptions,
    );
    if (timekeeperMode === 'on') {
      try {
        await postbox.startTimekeeper();
      } catch (error) {
        await postbox.close();
        throw error;
      }
    }
    return postbox;
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
    if (this.timekeeperMode === 'auto' && !this.timekeeperInstance) {
      this.startTimekeeper().catch((error) => this.logger.error({ err: error }, 'the timekeeper did not start'));
    }
    return consumer;
  }

  /**
   * Starts this instance's timekeeper, or starts it again; resolves once it runs, holding the lease
   * or standing by for it. See PostboxOptions.timekeeper for when it starts by itself.
   */
  async startTimekeeper(): Promise<Timekeeper> {
    this.assertOpen();
    this.timekeeperInstance ??= new Timekeeper(this.db, this.timekeeperOptions);
    await this.timekeeperInstance.start();
    return this.timekeeperInstance;
  }

  /** Stops this instance's timekeeper; its lease goes to a process standing by at once. */
  async stopTimekeeper(): Promise<void> {
    await this.timekeeperInstance?.stop();
  }

  /** This instance's timekeeper, once started. */
  get timekeeper(): Timekeeper | undefined {
    return this.timekeeperInstance;
  }

  /**
   * Defines a recurring message, or changes the one of that name (code may define its schedules at
   * every start-up): one message per tick of the cron expression in the time zone, appended once
   * across all processes by the timekeeper. A paused schedule stays paused.
   */
  schedule<P>(definition: ScheduleDefinition<P>): Promise<Schedule> {
    this.assertOpen();
    return upsertSchedule(this.db, definition as ScheduleDefinition, { payloadLimitBytes: this.payloadLimitBytes });
  }

  /** Schedules: list, get, pause, resume (from the next tick after now) and delete. */
  get schedules() {
    const db = this.db;
    return {
      list: () => listSchedules(db),
      get: (name: string) => getSchedule(db, name),
      pause: (name: string) => pauseSchedule(db, name),
      resume: (name: string) => resumeSchedule(db, name),
      delete: (name: string) => deleteSchedule(db, name),
    };
  }

  /**
   * Takes a message that waits for its time (deliverAt, delayMs) off the list: true when it was
   * waiting, false when it is not (already in the log, cancelled, or unknown). With `tx`, in the
   * caller's transaction: the cancel commits or rolls back with it.
   */
  cancelScheduled(id: string, tx?: CallerTransaction | Executor): Promise<boolean> {
    this.assertOpen();
    return cancelScheduled(tx ? asExecutor(tx) : this.db, id);
  }

  /** Messages waiting for their time, the soonest due first, by topic, key or due time. */
  listScheduled(filter: ScheduledFilter = {}): Promise<ScheduledMessage[]> {
    return listScheduled(this.db, filter);
  }

  /** What waits for its time, how overdue the oldest is, and which process keeps time. */
  timeStatus(): Promise<TimeStatus> {
    return timeStatus(this.db);
  }

  status(): Promise<LogStatus> {
    return logStatus(this.db);
  }

  /**
   * Whether this server's transaction ids are ahead of every id stored in the log; `behind` after a
   * restore or cut-over from another server, when consumers refuse to start until recoverAfterRestore().
   */
  checkTransactionIds(): Promise<TransactionIdCheck> {
    return checkTransactionIds(this.db);
  }

  /** Brings the log and its checkpoints onto this server's transaction ids after a restore (see recoverAfterRestore). */
  recoverAfterRestore(options: RecoveryOptions = {}): Promise<RecoveryResult> {
    this.assertOpen();
    return recoverAfterRestore(this.db, options);
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

  /**
   * Moves a group to read from another place in the log (earliest, latest, a time, a message id),
   * while no process runs it, and reports per partition the messages it will read again or skip.
   * A dry run changes nothing. See resetGroups.
   */
  resetGroup(options: ResetGroupOptions): Promise<GroupReset> {
    return resetGroup(this.db, options);
  }

  /** Resets several groups to one place, all of them or none, in one transaction. */
  resetGroups(options: ResetGroupsOptions): Promise<GroupReset[]> {
    return resetGroups(this.db, options);
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

  /**
   * Parked messages of routes with `park`: list (each key's in log order), release a key now (its
   * first parked message is attempted at once, the rest follow in order), discard one, and counts.
   */
  get parked() {
    const db = this.db;
    return {
      list: (filter: ParkedFilter = {}) => listParked(db, filter),
      release: (target: ParkedTarget) => releaseParked(db, target),
      discard: (id: string) => discardParked(db, id),
      counts: () => parkedCounts(db),
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
    const [results] = await Promise.all([
      Promise.all([...this.consumers].map((consumer) => consumer.stop(deadlineMs))),
      this.timekeeperInstance?.stop().catch((error) => this.logger.error({ err: error }, 'the timekeeper did not stop cleanly')),
    ]);
    if (this.ownsDatabase) await this.db.close();
    return results.every(Boolean);
  }

  private assertOpen(): void {
    if (this.closed) throw new PostboxError('POSTBOX_ERR_CLOSED', 'This Postbox instance is closed.');
  }
}
