import { LeaseLostError, PostboxError } from '../errors/postbox-error.js';
import type { LogMessage } from '../log/message.js';
import { comparePositions, type LogPosition } from '../log/position.js';
import { type ReadOptions, readAfter } from '../log/read.js';
import type { Logger } from '../observability/logger.js';
import { inProcessSpan, messagingSystem } from '../observability/tracing.js';
import { enqueue } from '../outbox/enqueue.js';
import type { ValidationLimits } from '../outbox/validate.js';
import type { Database, Executor } from '../sql/database.js';
import type { BatchContext, ConsumerOptions, ResolvedConsumerOptions } from './consumer-options.js';
import { commitCheckpoint, type LeasedPartition, recordPartitionError, releasePartition } from './group-store.js';
import { Wakeup } from './wakeup.js';

export interface PartitionReaderSettings {
  db: Database;
  options: ResolvedConsumerOptions;
  handlers: Pick<ConsumerOptions, 'handleBatch' | 'handleMessage' | 'betweenBatches'>;
  limits: ValidationLimits;
  logger: Logger;
  lease: LeasedPartition;
  onError: (error: unknown) => void;
  /** Called once the reader has handed its partition back or lost it. */
  onFinished: () => void;
}

/** First re-read delay after a NOTIFY whose rows were still behind the watermark; it doubles from here. */
const heldBackRetryMs = 5;

type ReaderState = 'running' | 'releasing' | 'stopping' | 'finished';

/**
 * Reads one partition of a group, whose lease its member holds: batches in log order after the
 * partition's checkpoint, handled, then the checkpoint stored, fenced by the lease. It ends when
 * its member hands the partition back (after the batch in hand), stops, or loses the lease.
 *
 * The partition's work between batches (a router's parked retries) runs in the same loop, so it
 * can never overlap a batch of the partition: per-key order needs that, since such work handles
 * messages of keys that the batches also carry. It runs when it said it next has work (a timer
 * wakes the loop then), or sooner when woken, and it stops with the loop when the lease is lost.
 */
export class PartitionReader {
  private readonly wakeup = new Wakeup();
  private readonly stopWakeup = new Wakeup();
  private readonly logger: Logger;
  private stateValue: ReaderState = 'running';
  private loop: Promise<void> | undefined;
  private batchAbort = new AbortController();
  private failures = 0;
  private prefetched: { after: LogPosition; messages: Promise<LogMessage[]> } | undefined;
  private handledCount = 0;
  /** Outside transactional mode: writes of the batch in hand that commit with its checkpoint. */
  private commitWork: ((tx: Executor) => Promise<void>)[] = [];
  /** When the work between batches is due (epoch ms): at once for a partition just taken. */
  private betweenBatchesDueAt: number;

  constructor(private readonly settings: PartitionReaderSettings) {
    this.logger = settings.logger.child({ partition: settings.lease.partition });
    this.betweenBatchesDueAt = settings.handlers.betweenBatches ? 0 : Number.POSITIVE_INFINITY;
  }

  get partition(): number {
    return this.settings.lease.partition;
  }

  get handled(): number {
    return this.handledCount;
  }

  /** True once it handed its partition back or gave it up. */
  get finished(): boolean {
    return this.stateValue === 'finished';
  }

  /** True while it finishes its batch in hand to hand the partition back. */
  get releasing(): boolean {
    return this.stateValue === 'releasing';
  }

  start(): void {
    this.loop = this.run();
  }

  /** New messages may be readable. */
  wake(): void {
    this.wakeup.wake();
  }

  /** The work between batches has something to do: it runs after the batch in hand. */
  wakeBetweenBatches(): void {
    if (!this.settings.handlers.betweenBatches) return;
    this.betweenBatchesDueAt = 0;
    this.wakeup.wake();
  }

  /** Hands the partition back once the batch in hand has committed, so that another member can take it. */
  release(): void {
    if (this.stateValue !== 'running') return;
    this.stateValue = 'releasing';
    this.wakeup.wake();
    this.stopWakeup.wake();
  }

  /** Another member took the partition: the batch in hand is aborted and not committed. */
  lose(): void {
    if (this.stateValue === 'finished') return;
    this.logger.warn('consumer group partition lost to another member');
    this.stateValue = 'finished';
    this.settings.onFinished();
    this.prefetched = undefined;
    this.batchAbort.abort(
      new LeaseLostError('POSTBOX_ERR_LEASE_LOST', `Lost partition ${this.partition} of group ${this.settings.options.group}.`),
    );
    this.wakeup.wake();
    this.stopWakeup.wake();
  }

  /**
   * Lets the batch in hand finish and commit, then hands the partition back. Resolves false when
   * the deadline passed first (the batch is aborted and will be delivered again).
   */
  async stop(deadlineMs: number): Promise<boolean> {
    if (this.stateValue !== 'finished') this.stateValue = 'stopping';
    this.wakeup.wake();
    this.stopWakeup.wake();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      (this.loop ?? Promise.resolve()).then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), deadlineMs);
      }),
    ]);
    clearTimeout(timer);
    if (!finished) this.batchAbort.abort(new PostboxError('POSTBOX_ERR_CONSUMER_STATE', 'Stop deadline passed.'));
    return finished;
  }

  private get reading(): boolean {
    return this.stateValue === 'running';
  }

  private async run(): Promise<void> {
    // A NOTIFY can arrive while an older open transaction still holds the watermark back, so the
    // read finds nothing; re-read soon after, backing off to the poll interval, instead of waiting it out.
    let woken = false;
    let heldBack = 0;
    const { options } = this.settings;
    while (this.reading) {
      try {
        this.wakeup.consume();
        await this.runBetweenBatches();
        const { count, readAhead } = await this.processBatch();
        this.failures = 0;
        // A batch read ahead saw the watermark of an earlier moment and may be short: read again before waiting.
        // A partition's read stops at the first of its bucket ranges that filled its page, so a short
        // batch there does not mean caught up: only an empty read does.
        const mayBeMore = count >= options.batchSize || (count > 0 && (readAhead || options.partitions > 1));
        if (mayBeMore || !this.reading) continue;
        heldBack = woken && count === 0 ? heldBack + 1 : 0;
        const readWaitMs = heldBack > 0 ? Math.min(options.pollIntervalMs, heldBackRetryMs * 2 ** (heldBack - 1)) : options.pollIntervalMs;
        const waitMs = Math.min(readWaitMs, Math.max(0, this.betweenBatchesDueAt - Date.now()));
        woken = (await this.wakeup.wait(waitMs)) || (heldBack > 0 && waitMs < options.pollIntervalMs);
      } catch (error) {
        await this.onBatchError(error);
      }
    }
    if (this.stateValue !== 'finished') {
      await releasePartition(this.settings.db, options.group, options.owner, this.partition).catch((error) => this.settings.onError(error));
      this.stateValue = 'finished';
      this.logger.info('consumer group partition handed back');
      this.settings.onFinished();
    }
  }

  private context(tx: Executor | undefined): BatchContext {
    const { db, limits, options } = this.settings;
    return {
      group: options.group,
      partition: this.partition,
      tx,
      signal: this.batchAbort.signal,
      publish: (messages) => (tx ? enqueue(tx, messages, limits) : db.transaction((own) => enqueue(own, messages, limits))),
      fence: (fenced) => this.fence(fenced),
      atCommit: tx ? undefined : (work) => void this.commitWork.push(work),
    };
  }

  /** Between batches the durable checkpoint is the lease's: storing it again changes nothing but the lease's expiry. */
  private fence(tx: Executor): Promise<void> {
    return this.commit(tx, this.settings.lease.checkpoint);
  }

  /** Runs the partition's work between batches when it is due; it says when it is due next. */
  private async runBetweenBatches(): Promise<void> {
    const work = this.settings.handlers.betweenBatches;
    if (!work || !this.reading || Date.now() < this.betweenBatchesDueAt) return;
    const { options } = this.settings;
    // A wake-up while it runs lowers this again; a failure leaves it due, after the backoff of onBatchError.
    this.betweenBatchesDueAt = Number.POSITIVE_INFINITY;
    let next = 0;
    try {
      next = (
        await work({
          group: options.group,
          partition: this.partition,
          partitions: options.partitions,
          signal: this.batchAbort.signal,
          fence: (tx) => this.fence(tx),
        })
      ).getTime();
    } finally {
      this.betweenBatchesDueAt = Math.min(this.betweenBatchesDueAt, next);
    }
  }

  private handle(messages: LogMessage[], tx: Executor | undefined): Promise<LogPosition | undefined> {
    const { options } = this.settings;
    const topic = messages[0]?.topic as string;
    const attributes = {
      'messaging.system': messagingSystem,
      'messaging.operation.type': 'process',
      'messaging.destination.name': topic,
      'messaging.consumer.group.name': options.group,
      'messaging.destination.partition.id': String(this.partition),
    };
    return inProcessSpan(`process ${topic}`, attributes, messages, () => this.handleInSpan(messages, tx));
  }

  private async handleInSpan(messages: LogMessage[], tx: Executor | undefined): Promise<LogPosition | undefined> {
    const context = this.context(tx);
    const { handleBatch, handleMessage } = this.settings.handlers;
    if (handleBatch) {
      await handleBatch(messages, context);
      return positionOf(messages.at(-1));
    }
    let done: LogMessage | undefined;
    try {
      for (const message of messages) {
        await handleMessage?.(message, context);
        done = message;
      }
    } catch (error) {
      // Outside a transaction, keep what was handled so a retry starts at the failing message.
      if (!tx && done) {
        const position = positionOf(done) as LogPosition;
        await this.commit(this.settings.db, position);
        this.advance(position, messages.indexOf(done) + 1);
      }
      throw error;
    }
    return positionOf(done);
  }

  private readOptions(after: LogPosition): ReadOptions {
    const { options, lease } = this.settings;
    return {
      topics: options.topics,
      after,
      limit: options.batchSize,
      skipVisibleIn: lease.skipVisibleIn,
      partition: { index: lease.partition, count: options.partitions },
    };
  }

  /**
   * A full batch means more is waiting: starts reading the next one on the pool while this one is
   * handled. Resolves when that read has finished, whether it worked or not.
   */
  private readAheadAfter(messages: LogMessage[]): Promise<unknown> | undefined {
    if (messages.length < this.settings.options.batchSize || !this.reading) return undefined;
    const after = positionOf(messages.at(-1)) as LogPosition;
    const next = readAfter(this.settings.db, this.readOptions(after));
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

  /** Stores the checkpoint on db (our pool, or the batch's transaction), fenced by the partition's lease. */
  private async commit(db: Executor, position: LogPosition): Promise<void> {
    const { options } = this.settings;
    const kept =
      this.stateValue !== 'finished' &&
      (await commitCheckpoint(db, options.group, this.partition, options.owner, position, options.leaseTtlMs));
    if (!kept) {
      throw new LeaseLostError(
        'POSTBOX_ERR_LEASE_LOST',
        `Partition ${this.partition} of group ${options.group} is held by another member; the batch was not committed.`,
      );
    }
  }

  /** Moves the in-memory position only once the checkpoint is durable. */
  private advance(position: LogPosition, count: number): void {
    this.settings.lease.checkpoint = position;
    this.handledCount += count;
  }

  private async processBatch(): Promise<{ count: number; readAhead: boolean }> {
    const { db, options, lease } = this.settings;
    const ahead = await this.takePrefetched(lease.checkpoint);
    const readAhead = ahead !== undefined;
    try {
      if (!options.transactional) {
        const messages = ahead ?? (await readAfter(db, this.readOptions(lease.checkpoint)));
        if (messages.length === 0) return { count: 0, readAhead };
        this.readAheadAfter(messages);
        this.commitWork = [];
        const position = await this.handle(messages, undefined);
        if (position) {
          const work = this.commitWork;
          if (work.length === 0) await this.commit(db, position);
          else {
            await db.transaction(async (tx) => {
              for (const write of work) await write(tx);
              await this.commit(tx, position);
            });
          }
          this.advance(position, messages.length);
        }
        return { count: messages.length, readAhead };
      }
      const outcome = await db.transaction(async (tx) => {
        const messages = ahead ?? (await readAfter(tx, this.readOptions(lease.checkpoint)));
        // Log rows never change and retention keeps whatever a group still owes, so the next batch
        // can be read on the pool, outside this transaction, while the transaction runs.
        const next = this.readAheadAfter(messages);
        const position = messages.length > 0 ? await this.handle(messages, tx) : undefined;
        if (position) await this.commit(tx, position);
        // With one partition, the read-ahead's connection goes back to the pool before this one, so
        // the next batch runs on the same server process: its prepared statements stay warm and the
        // rows a handler inserts batch after batch keep log order on disk. Readers of several
        // partitions do not wait, or their transactions could hold every connection of the pool
        // while their read-aheads wait for one. PGlite's one connection runs the read-ahead after
        // this transaction, so waiting for it there would never end.
        if (next && options.partitions === 1 && db.kind !== 'pglite') await next;
        return { count: messages.length, position };
      });
      if (outcome.position) this.advance(outcome.position, outcome.count);
      return { count: outcome.count, readAhead };
    } catch (error) {
      this.prefetched = undefined;
      throw error;
    }
  }

  private async onBatchError(error: unknown): Promise<void> {
    if (error instanceof LeaseLostError) {
      this.lose();
      return;
    }
    const { db, options } = this.settings;
    this.failures += 1;
    this.settings.onError(error);
    const message = error instanceof Error ? error.message : String(error);
    await recordPartitionError(db, options.group, this.partition, message).catch(() => undefined);
    const delay = Math.min(options.maxRetryDelayMs, options.retryDelayMs * 2 ** (this.failures - 1));
    // Backoff sleeps wake on a stop or a release, but not on new messages.
    this.stopWakeup.consume();
    if (this.reading) await this.stopWakeup.wait(delay * (0.5 + Math.random() / 2));
  }
}

function positionOf(message: LogMessage | undefined): LogPosition | undefined {
  return message && { transactionId: message.transactionId, globalPosition: message.globalPosition };
}
