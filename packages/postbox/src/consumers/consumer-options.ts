import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { defaults } from '../config/defaults.js';
import { ValidationError } from '../errors/postbox-error.js';
import type { LogMessage } from '../log/message.js';
import type { Logger } from '../observability/logger.js';
import type { OutgoingMessage } from '../outbox/outgoing-message.js';
import type { Executor } from '../sql/database.js';
import { checkGroupDefinition, type StartFrom } from './group-store.js';

export interface BatchContext {
  group: string;
  /** The partition the batch belongs to (0 in a group of one partition). */
  partition: number;
  /** The batch's transaction, present in transactional mode: writes on it commit with the checkpoint. */
  tx: Executor | undefined;
  /** Aborted when the stop deadline passes or the partition's lease is lost. */
  signal: AbortSignal;
  /** Publishes follow-up messages: in the batch's transaction when transactional, otherwise in one of their own. */
  publish(messages: OutgoingMessage | readonly OutgoingMessage[]): Promise<string[]>;
  /**
   * Fences writes made outside the batch's transaction by the partition's lease: on tx it renews the
   * lease, or throws LeaseLostError (so tx rolls back) when another member holds the partition now.
   */
  fence(tx: Executor): Promise<void>;
  /**
   * Outside transactional mode: work to run in the transaction that stores the batch's checkpoint,
   * so that it commits with it or not at all (absent in transactional mode: write on tx instead).
   */
  atCommit?(work: (tx: Executor) => Promise<void>): void;
}

/** What the work a partition does between its batches gets (see ConsumerOptions.betweenBatches). */
export interface BetweenBatchesContext {
  group: string;
  partition: number;
  /** The group's number of partitions. */
  partitions: number;
  /** Aborted when the stop deadline passes or the partition's lease is lost. */
  signal: AbortSignal;
  /** As BatchContext.fence: every write of this work must pass it, in the write's transaction. */
  fence(tx: Executor): Promise<void>;
}

/**
 * Work of a partition that must never run at the same time as the partition's batches: its reader
 * runs it between two batches, and stops running it when it loses the partition. It resolves to
 * when it next has work; the reader wakes for it then (Consumer.wakeBetweenBatches wakes it sooner).
 */
export type BetweenBatches = (context: BetweenBatchesContext) => Promise<Date>;

export interface ConsumerOptions {
  group: string;
  topics: readonly string[];
  /** Where a new group starts. An existing group always resumes from its checkpoints. */
  startFrom?: StartFrom;
  /**
   * Partitions of the group's messages, by key: each is read by one process at a time, in key order,
   * and the processes running the group share them evenly. 1 by default: one process reads, others
   * stand by. Fixed when the group is created.
   */
  partitions?: number;
  /** A per-process group (one per pod): recorded as ephemeral and removed by zombie cleanup once stale. */
  ephemeral?: boolean;
  /** The handler's writes commit together with the checkpoint (exactly-once effects). */
  transactional?: boolean;
  batchSize?: number;
  pollIntervalMs?: number;
  leaseTtlMs?: number;
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Identifies this process among the group's members; defaults to host, pid and a random suffix. */
  owner?: string;
  handleBatch?: (messages: LogMessage[], context: BatchContext) => Promise<void>;
  handleMessage?: (message: LogMessage, context: BatchContext) => Promise<void>;
  /** Work of each partition between its batches (a router's parked retries), never during one. */
  betweenBatches?: BetweenBatches;
  onError?: (error: unknown) => void;
  logger?: Logger;
}

export type ConsumerState = 'idle' | 'standby' | 'active' | 'stopping' | 'stopped';

/** The options of a consumer, checked, with their defaults. */
export interface ResolvedConsumerOptions {
  group: string;
  topics: readonly string[];
  startFrom: StartFrom;
  partitions: number;
  ephemeral: boolean;
  transactional: boolean;
  batchSize: number;
  pollIntervalMs: number;
  leaseTtlMs: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  owner: string;
}

export function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  const resolved = value ?? fallback;
  if (!Number.isSafeInteger(resolved) || resolved <= 0) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `${name} must be a positive integer (got ${String(value)}).`, { option: name });
  }
  return resolved;
}

export function resolveConsumerOptions(options: ConsumerOptions): ResolvedConsumerOptions {
  if (!options.handleBatch === !options.handleMessage) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'Pass exactly one of handleBatch or handleMessage.', { option: 'handleBatch' });
  }
  const group = checkGroupDefinition({
    name: options.group,
    topics: options.topics,
    startFrom: options.startFrom ?? defaults.consumer.startFrom,
    ephemeral: options.ephemeral ?? false,
    partitions: options.partitions ?? defaults.consumer.partitions,
  });
  return {
    group: group.name,
    topics: group.topics,
    startFrom: group.startFrom,
    partitions: group.partitions,
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
