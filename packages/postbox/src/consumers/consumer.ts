import { defaults } from '../config/defaults.js';
import { PostboxError } from '../errors/postbox-error.js';
import { assertTransactionIdsCurrent } from '../log/transaction-ids.js';
import { type Logger, silentLogger } from '../observability/logger.js';
import type { ValidationLimits } from '../outbox/validate.js';
import type { Database } from '../sql/database.js';
import { planAssignment } from './assignment.js';
import { type ConsumerOptions, type ConsumerState, type ResolvedConsumerOptions, resolveConsumerOptions } from './consumer-options.js';
import { acquirePartitions, ensureGroup, heartbeat, leaveGroup, releasePartition } from './group-store.js';
import { PartitionReader } from './partition-reader.js';

export type { BatchContext, BetweenBatches, BetweenBatchesContext, ConsumerOptions, ConsumerState } from './consumer-options.js';

import { Wakeup } from './wakeup.js';

/**
 * A member of a consumer group. It heartbeats, and spreads the group's partitions evenly with the
 * other live members (see planAssignment); each partition it holds is read by a PartitionReader of
 * its own. A partition changes owner only between batches: the reader commits (or rolls back) its
 * batch in hand, then hands the lease back, and only then can another member take it. A member
 * that stops hands its partitions back at once; one that dies loses them when their leases run
 * out. Delivery is at-least-once; in transactional mode the handler's writes and the partition's
 * checkpoint commit together.
 */
export class Consumer {
  private readonly options: ResolvedConsumerOptions;
  private readonly logger: Logger;
  /** Wakes the membership loop: a member joined or left, or a partition was handed back. */
  private readonly membershipWakeup = new Wakeup();
  private readonly readers = new Map<number, PartitionReader>();
  private stateValue: ConsumerState = 'idle';
  private loop: Promise<void> | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private handledByFormerReaders = 0;

  constructor(
    private readonly db: Database,
    private readonly handlerOptions: ConsumerOptions,
    private readonly limits: ValidationLimits,
  ) {
    this.options = resolveConsumerOptions(handlerOptions);
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

  /** The partitions this member reads now. */
  get partitions(): number[] {
    return [...this.readers.keys()].sort((a, b) => a - b);
  }

  /** Messages handled and checkpointed by this consumer since it started. */
  get handled(): number {
    let count = this.handledByFormerReaders;
    for (const reader of this.readers.values()) count += reader.handled;
    return count;
  }

  /**
   * Runs the work between batches (ConsumerOptions.betweenBatches) of the partitions this member
   * reads, or of one of them, after their batch in hand rather than when it was next due.
   */
  wakeBetweenBatches(partition?: number): void {
    for (const reader of this.readers.values()) {
      if (partition === undefined || reader.partition === partition) reader.wakeBetweenBatches();
    }
  }

  /** Creates the group if needed, joins it, and starts reading the partitions it is given. */
  async start(): Promise<void> {
    if (this.stateValue !== 'idle') {
      throw new PostboxError('POSTBOX_ERR_CONSUMER_STATE', `Consumer for group ${this.options.group} was already started.`);
    }
    // After a restore onto another server, reading would skip the messages written here: refuse instead.
    await assertTransactionIdsCurrent(this.db);
    await ensureGroup(this.db, {
      name: this.options.group,
      topics: this.options.topics,
      startFrom: this.options.startFrom,
      ephemeral: this.options.ephemeral,
      partitions: this.options.partitions,
    });
    const topics = new Set(this.options.topics);
    const unlistenTopics = await this.db.listen(
      defaults.notifyChannel,
      (topic) => {
        if (topics.has(topic)) for (const reader of this.readers.values()) reader.wake();
      },
      () => {
        for (const reader of this.readers.values()) reader.wake();
      },
    );
    const unlistenMembers = await this.db.listen(
      defaults.leaseChannel,
      (group) => {
        if (group === this.options.group) this.membershipWakeup.wake();
      },
      () => this.membershipWakeup.wake(),
    );
    this.unlisten = async () => {
      await Promise.all([unlistenTopics(), unlistenMembers()]);
    };
    this.stateValue = 'standby';
    this.loop = this.membership();
  }

  /**
   * Stops fetching, lets every partition's batch in hand finish and commit, hands the partitions
   * back and leaves the group. Resolves false when the deadline passed first (the unfinished
   * batches will be delivered again).
   */
  async stop(deadlineMs: number = defaults.shutdownDeadlineMs): Promise<boolean> {
    if (this.stateValue === 'idle' || this.stateValue === 'stopped') {
      this.stateValue = 'stopped';
      return true;
    }
    this.stateValue = 'stopping';
    this.membershipWakeup.wake();
    await this.loop;
    const finished = (await Promise.all([...this.readers.values()].map((reader) => reader.stop(deadlineMs)))).every(Boolean);
    for (const reader of this.readers.values()) this.handledByFormerReaders += reader.handled;
    this.readers.clear();
    await this.unlisten?.().catch(() => undefined);
    await leaveGroup(this.db, this.options.group, this.options.owner).catch((error) => this.reportError(error));
    this.stateValue = 'stopped';
    return finished;
  }

  private get running(): boolean {
    return this.stateValue === 'standby' || this.stateValue === 'active';
  }

  /** Heartbeats and rebalances every third of a lease, and at once when the group changes. */
  private async membership(): Promise<void> {
    const intervalMs = Math.max(50, Math.floor(this.options.leaseTtlMs / 3));
    while (this.running) {
      // Cleared before asking, so that a change announced while the heartbeat is in flight wakes the wait below.
      this.membershipWakeup.consume();
      try {
        await this.rebalance();
      } catch (error) {
        this.reportError(error);
      }
      if (!this.running) return;
      await this.membershipWakeup.wait(intervalMs);
    }
  }

  private async rebalance(): Promise<void> {
    const view = await heartbeat(this.db, this.options.group, this.options.owner, this.options.leaseTtlMs);
    const held = new Set(view.held);
    for (const [partition, reader] of this.readers) {
      if (!held.has(partition) && !reader.releasing) reader.lose();
    }
    this.forgetFinishedReaders();
    if (!this.running) return;
    // A lease this member holds without reading it (its reader ended between heartbeats): hand it back.
    for (const partition of held) {
      if (this.readers.has(partition)) continue;
      await releasePartition(this.db, this.options.group, this.options.owner, partition);
      view.owners.delete(partition);
    }
    const plan = planAssignment({
      partitions: this.options.partitions,
      members: view.members,
      owners: view.owners,
      me: this.options.owner,
    });
    for (const partition of plan.release) this.readers.get(partition)?.release();
    if (plan.acquireCount > 0) {
      const leases = await acquirePartitions(
        this.db,
        this.options.group,
        this.options.owner,
        this.options.leaseTtlMs,
        plan.acquire,
        plan.acquireCount,
      );
      if (!this.running) {
        // stop() came while the leases were being taken: hand them back rather than block them for a lease time.
        for (const lease of leases) {
          await releasePartition(this.db, this.options.group, this.options.owner, lease.partition).catch((error) =>
            this.reportError(error),
          );
        }
        return;
      }
      for (const lease of leases) {
        const reader = new PartitionReader({
          db: this.db,
          options: this.options,
          handlers: this.handlerOptions,
          limits: this.limits,
          logger: this.logger,
          lease,
          onError: (error) => this.reportError(error),
          // A partition handed back or lost: the membership loop takes stock at once.
          onFinished: () => this.membershipWakeup.wake(),
        });
        this.readers.set(lease.partition, reader);
        reader.start();
        this.logger.info({ owner: this.options.owner, partition: lease.partition }, 'consumer group partition taken');
      }
    }
    this.stateValue = this.readers.size > 0 ? 'active' : 'standby';
  }

  /** Drops the readers that handed their partition back or lost it. */
  private forgetFinishedReaders(): void {
    for (const [partition, reader] of this.readers) {
      if (!reader.finished) continue;
      this.handledByFormerReaders += reader.handled;
      this.readers.delete(partition);
    }
    if (this.running) this.stateValue = this.readers.size > 0 ? 'active' : 'standby';
  }

  private reportError(error: unknown): void {
    this.logger.error({ err: error }, 'consumer batch failed; it will be retried');
    this.handlerOptions.onError?.(error);
  }
}
