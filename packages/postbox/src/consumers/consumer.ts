import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { defaults } from '../config/defaults.js';
import { LeaseLostError, PostboxError, ValidationError } from '../errors/postbox-error.js';
import type { LogMessage } from '../log/message.js';
import { comparePositions, type LogPosition } from '../log/position.js';
import { type ReadOptions, readAfter } from '../log/read.js';
import { type Logger, silentLogger } from '../observability/logger.js';
import { enqueue } from '../outbox/enqueue.js';
import type { OutgoingMessage } from '../outbox/outgoing-message.js';
import type { ValidationLimits } from '../outbox/validate.js';
import type { Database, Executor } from '../sql/database.js';
import {
  acquireLease,
  checkGroupDefinition,
  commitCheckpoint,
  ensureGroup,
  type LeasedGroup,
  recordGroupError,
  releaseLease,
  renewLease,
  type StartFrom,
} from './group-store.js';
import { Wakeup } from './wakeup.js';

export interface BatchContext {
  group: string;
  /** The batch's transaction, present in transactional mode: writes on it commit with the checkpoint. */
  tx: Executor | undefined;
  /** Aborted when the stop deadline passes or the lease is lost. */
  signal: AbortSignal;
  /** Publishes follow-up messages: in the batch's transaction when transactional, otherwise in one of their own. */
  publish(messages: OutgoingMessage | readonly OutgoingMessage[]): Promise<string[]>;
}

export interface ConsumerOptions {
  group: string;
  topics: readonly string[];
  /** Where a new group starts. An existing group always resumes from its checkpoint. */
  startFrom?: StartFrom;
  /** A per-process group (one per pod): recorded as ephemeral and removed by zombie cleanup once stale. */
  ephemeral?: boolean;
  /** The handler's writes commit together with the checkpoint (exactly-once effects). */
  transactional?: boolean;
  batchSize?: number;
  pollIntervalMs?: number;
  leaseTtlMs?: number;
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Identifies this process in the lease; defaults to host, pid and a random suffix. */
  owner?: string;
  handleBatch?: (messages: LogMessage[], context: BatchContext) => Promise<void>;
  handleMessage?: (message: LogMessage, context: BatchContext) => Promise<void>;
  onError?: (error: unknown) => void;
  logger?: Logger;
}

export type ConsumerState = 'idle' | 'standby' | 'active' | 'stopping' | 'stopped';

interface Resolved {
  group: string;
  topics: readonly string[];
  startFrom: StartFrom;
  ephemeral: boolean;
  transactional: boolean;
  batchSize: number;
  pollIntervalMs: number;
  leaseTtlMs: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  owner: string;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  const resolved = value ?? fallback;
  if (!Number.isSafeInteger(resolved) || resolved <= 0) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `${name} must be a positive integer (got ${String(value)}).`, { option: name });
  }
  return resolved;
}

function resolveOptions(options: ConsumerOptions): Resolved {
  if (!options.handleBatch === !options.handleMessage) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'Pass exactly one of handleBatch or handleMessage.', { option: 'handleBatch' });
  }
  const group = checkGroupDefinition({
    name: options.group,
    topics: options.topics,
    startFrom: options.startFrom ?? defaults.consumer.startFrom,
    ephemeral: options.ephemeral ?? false,
  });
  return {
    group: group.name,
    topics: group.topics,
    startFrom: group.startFrom,
    ephemeral: group.ephemeral,
    transactional: options.transactional ?? false,
    batchSize: positiveInteger('batchSize', options.batchSize, defaults.consumer.batchSize),
    pollIntervalMs: positiveInteger('pollIntervalMs', options.pollIntervalMs, defaults.consumer.pollIntervalMs),
    leaseTtlMs: positiveInteger('leaseTtlMs', options.leaseTtlMs, defaults.consumer.leaseTtlMs),
    retryDelayMs: positiveInteger('retryDelayMs', options.retryDelayMs, defaults.consumer.retryDelayMs),
    maxRetryDelayMs: positiveInteger('maxRetryDelayMs', options.maxRetryDelayMs, defaults.consumer.maxRetryDelayMs),
    owner: options.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
  };
}

function sleep(ms: number, wakeup: Wakeup): Promise<boolean> {
  return wakeup.wait(ms);
}

/** First re-read delay after a NOTIFY whose rows were still behind the watermark; it doubles from here. */
const heldBackRetryMs = 5;

/**
 * A reader of the log with a checkpoint. One process at a time holds a group's lease and reads;
 * others stand by and take over when it expires. Delivery is at-least-once; in transactional mode
 * the handler's writes and the checkpoint commit together.
 */
export class Consumer {
  private readonly options: Resolved;
  private readonly wakeup = new Wakeup();
  private readonly stopWakeup = new Wakeup();
  /** Wakes a standby when the holder hands the group's lease back, or on stop. */
  private readonly leaseWakeup = new Wakeup();
  private readonly logger: Logger;
  private stateValue: ConsumerState = 'idle';
  private lease: LeasedGroup | undefined;
  private loop: Promise<void> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private batchAbort = new AbortController();
  private failures = 0;
  private prefetched: { after: LogPosition; messages: Promise<LogMessage[]> } | undefined;
  private handledCount = 0;

  constructor(
    private readonly db: Database,
    private readonly handlerOptions: ConsumerOptions,
    private readonly limits: ValidationLimits,
  ) {
    this.options = resolveOptions(handlerOptions);
    this.logger = (handlerOptions.logger ?? silentLogger).child({ group: this.options.group });
  }

  get group(): string {
    return this.options.group;
  }

  get owner(): string {
    return this.options.owner;
  }

  get state(): ConsumerState {
    return this.stateValue;
  }

  /** Messages handled and checkpointed by this consumer since it started. */
  get handled(): number {
    return this.handledCount;
  }

  /** Creates the group if needed and starts reading in the background. */
  async start(): Promise<void> {
    if (this.stateValue !== 'idle') {
      throw new PostboxError('POSTBOX_ERR_CONSUMER_STATE', `Consumer for group ${this.options.group} was already started.`);
    }
    await ensureGroup(this.db, {
      name: this.options.group,
      topics: this.options.topics,
      startFrom: this.options.startFrom,
      ephemeral: this.options.ephemeral,
    });
    const topics = new Set(this.options.topics);
    const unlistenTopics = await this.db.listen(
      defaults.notifyChannel,
      (topic) => {
        if (topics.has(topic)) this.wakeup.wake();
      },
      () => this.wakeup.wake(),
    );
    const unlistenLeases = await this.db.listen(
      defaults.leaseChannel,
      (group) => {
        if (group === this.options.group && !this.lease) this.leaseWakeup.wake();
      },
      () => this.leaseWakeup.wake(),
    );
    this.unlisten = async () => {
      await Promise.all([unlistenTopics(), unlistenLeases()]);
    };
    this.stateValue = 'standby';
    this.loop = this.run();
  }

  /**
   * Stops fetching, lets the batch in hand finish and commit, then releases the lease.
   * Resolves false when the deadline passed first (the unfinished batch will be redelivered).
   */
  async stop(deadlineMs: number = defaults.shutdownDeadlineMs): Promise<boolean> {
    if (this.stateValue === 'idle' || this.stateValue === 'stopped') {
      this.stateValue = 'stopped';
      return true;
    }
    this.stateValue = 'stopping';
    this.wakeup.wake();
    this.stopWakeup.wake();
    this.leaseWakeup.wake();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      (this.loop ?? Promise.resolve()).then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), deadlineMs);
      }),
    ]);
    clearTimeout(timer);
    if (!finished) this.batchAbort.abort(new PostboxError('POSTBOX_ERR_CONSUMER_STATE', 'Stop deadline passed.'));
    this.stopHeartbeat();
    await this.unlisten?.().catch(() => undefined);
    if (finished && this.lease) {
      await releaseLease(this.db, this.options.group, this.options.owner).catch((error) => this.reportError(error));
    }
    this.lease = undefined;
    this.stateValue = 'stopped';
    return finished;
  }

  private get running(): boolean {
    return this.stateValue === 'standby' || this.stateValue === 'active';
  }

  private async run(): Promise<void> {
    // A NOTIFY can arrive while an older open transaction still holds the watermark back, so the
    // read finds nothing; re-read soon after, backing off to the poll interval, instead of waiting it out.
    let woken = false;
    let heldBack = 0;
    while (this.running) {
      try {
        if (!this.lease) {
          await this.takeLease();
          continue;
        }
        this.wakeup.consume();
        const { count, readAhead } = await this.processBatch(this.lease);
        this.failures = 0;
        // A batch read ahead saw the watermark of an earlier moment and may be short: read again before waiting.
        if (count >= this.options.batchSize || (readAhead && count > 0) || !this.running) continue;
        heldBack = woken && count === 0 ? heldBack + 1 : 0;
        const waitMs =
          heldBack > 0 ? Math.min(this.options.pollIntervalMs, heldBackRetryMs * 2 ** (heldBack - 1)) : this.options.pollIntervalMs;
        woken = (await sleep(waitMs, this.wakeup)) || (heldBack > 0 && waitMs < this.options.pollIntervalMs);
      } catch (error) {
        await this.onBatchError(error);
      }
    }
  }

  private async takeLease(): Promise<void> {
    // Cleared before asking, so that a hand-back announced while the request is in flight still wakes the wait below.
    this.leaseWakeup.consume();
    const lease = await acquireLease(this.db, this.options.group, this.options.owner, this.options.leaseTtlMs);
    if (!lease) {
      this.stateValue = this.running ? 'standby' : this.stateValue;
      if (!this.running) return;
      await sleep(Math.max(50, Math.floor(this.options.leaseTtlMs / 3)), this.leaseWakeup);
      return;
    }
    if (!this.running) {
      // stop() came while the lease was being taken: hand it back rather than block the group for a lease time.
      await releaseLease(this.db, this.options.group, this.options.owner).catch((error) => this.reportError(error));
      return;
    }
    this.lease = lease;
    this.prefetched = undefined;
    this.stateValue = 'active';
    this.batchAbort = new AbortController();
    this.startHeartbeat();
    this.logger.info({ owner: this.options.owner }, 'consumer group lease taken');
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.heartbeat = setInterval(
      () => {
        renewLease(this.db, this.options.group, this.options.owner, this.options.leaseTtlMs).then(
          (kept) => {
            if (!kept) this.loseLease();
          },
          (error) => this.reportError(error),
        );
      },
      Math.max(50, Math.floor(this.options.leaseTtlMs / 3)),
    );
    this.heartbeat.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  private loseLease(): void {
    if (!this.lease) return;
    this.logger.warn('consumer group lease lost to another process');
    this.lease = undefined;
    this.prefetched = undefined;
    this.stopHeartbeat();
    this.batchAbort.abort(new LeaseLostError('POSTBOX_ERR_LEASE_LOST', `Lost the lease of group ${this.options.group}.`));
    if (this.running) this.stateValue = 'standby';
  }

  private context(tx: Executor | undefined): BatchContext {
    return {
      group: this.options.group,
      tx,
      signal: this.batchAbort.signal,
      publish: (messages) => (tx ? enqueue(tx, messages, this.limits) : this.db.transaction((own) => enqueue(own, messages, this.limits))),
    };
  }

  private async handle(lease: LeasedGroup, messages: LogMessage[], tx: Executor | undefined): Promise<LogPosition | undefined> {
    const context = this.context(tx);
    if (this.handlerOptions.handleBatch) {
      await this.handlerOptions.handleBatch(messages, context);
      return positionOf(messages.at(-1));
    }
    let done: LogMessage | undefined;
    try {
      for (const message of messages) {
        await this.handlerOptions.handleMessage?.(message, context);
        done = message;
      }
    } catch (error) {
      // Outside a transaction, keep what was handled so a retry starts at the failing message.
      if (!tx && done) {
        const position = positionOf(done) as LogPosition;
        await this.commit(this.db, position);
        this.advance(lease, position, messages.indexOf(done) + 1);
      }
      throw error;
    }
    return positionOf(done);
  }

  /**
   * A full batch means more is waiting: starts reading the next one on the pool while this one is
   * handled. Resolves when that read has finished, whether it worked or not.
   */
  private readAheadAfter(messages: LogMessage[], read: Omit<ReadOptions, 'after'>): Promise<unknown> | undefined {
    if (messages.length < this.options.batchSize) return undefined;
    const after = positionOf(messages.at(-1)) as LogPosition;
    const next = readAfter(this.db, { ...read, after });
    this.prefetched = { after, messages: next };
    return next.catch(() => undefined);
  }

  /**
   * The batch read ahead, if it starts exactly where the checkpoint now is. After a rollback, a
   * failed handler or a lost lease the checkpoint ends elsewhere and the batch is dropped; a failed
   * or empty read-ahead is simply read again.
   */
  private async takePrefetched(checkpoint: LogPosition): Promise<LogMessage[] | undefined> {
    const prefetched = this.prefetched;
    this.prefetched = undefined;
    if (!prefetched || comparePositions(prefetched.after, checkpoint) !== 0) return undefined;
    const messages = await prefetched.messages.catch(() => undefined);
    return messages && messages.length > 0 ? messages : undefined;
  }

  /** Stores the checkpoint on db (our pool, or the batch's transaction), fenced by the lease. */
  private async commit(db: Executor, position: LogPosition): Promise<void> {
    const kept = this.lease && (await commitCheckpoint(db, this.options.group, this.options.owner, position, this.options.leaseTtlMs));
    if (!kept) {
      throw new LeaseLostError(
        'POSTBOX_ERR_LEASE_LOST',
        `Group ${this.options.group} is held by another process; the batch was not committed.`,
      );
    }
  }

  /** Moves the in-memory position only once the checkpoint is durable. */
  private advance(lease: LeasedGroup, position: LogPosition, count: number): void {
    lease.checkpoint = position;
    this.handledCount += count;
  }

  private async processBatch(lease: LeasedGroup): Promise<{ count: number; readAhead: boolean }> {
    const read = { topics: this.options.topics, limit: this.options.batchSize, skipVisibleIn: lease.skipVisibleIn };
    const ahead = await this.takePrefetched(lease.checkpoint);
    const readAhead = ahead !== undefined;
    try {
      if (!this.options.transactional) {
        const messages = ahead ?? (await readAfter(this.db, { ...read, after: lease.checkpoint }));
        if (messages.length === 0) return { count: 0, readAhead };
        this.readAheadAfter(messages, read);
        const position = await this.handle(lease, messages, undefined);
        if (position) {
          await this.commit(this.db, position);
          this.advance(lease, position, messages.length);
        }
        return { count: messages.length, readAhead };
      }
      const outcome = await this.db.transaction(async (tx) => {
        const messages = ahead ?? (await readAfter(tx, { ...read, after: lease.checkpoint }));
        // Log rows never change and retention keeps whatever a group still owes, so the next batch
        // can be read on the pool, outside this transaction, while the transaction runs.
        const next = this.readAheadAfter(messages, read);
        const position = messages.length > 0 ? await this.handle(lease, messages, tx) : undefined;
        if (position) await this.commit(tx, position);
        // The read-ahead's connection goes back to the pool before this one, so the next batch runs
        // on the same server process: its prepared statements stay warm and the rows a handler
        // inserts batch after batch keep log order on disk. PGlite's one connection runs the
        // read-ahead after this transaction instead, so waiting for it here would never end.
        if (next && this.db.kind !== 'pglite') await next;
        return { count: messages.length, position };
      });
      if (outcome.position) this.advance(lease, outcome.position, outcome.count);
      return { count: outcome.count, readAhead };
    } catch (error) {
      this.prefetched = undefined;
      throw error;
    }
  }

  private async onBatchError(error: unknown): Promise<void> {
    if (error instanceof LeaseLostError) {
      this.loseLease();
      return;
    }
    this.failures += 1;
    this.reportError(error);
    const message = error instanceof Error ? error.message : String(error);
    await recordGroupError(this.db, this.options.group, message).catch(() => undefined);
    const delay = Math.min(this.options.maxRetryDelayMs, this.options.retryDelayMs * 2 ** (this.failures - 1));
    if (this.running) await sleep(delay * (0.5 + Math.random() / 2), this.wakeupForStopOnly());
  }

  /** Backoff sleeps wake on stop, but not on new messages. */
  private wakeupForStopOnly(): Wakeup {
    this.stopWakeup.consume();
    if (!this.running) this.stopWakeup.wake();
    return this.stopWakeup;
  }

  private reportError(error: unknown): void {
    this.logger.error({ err: error }, 'consumer batch failed; it will be retried');
    this.handlerOptions.onError?.(error);
  }
}

function positionOf(message: LogMessage | undefined): LogPosition | undefined {
  return message && { transactionId: message.transactionId, globalPosition: message.globalPosition };
}
