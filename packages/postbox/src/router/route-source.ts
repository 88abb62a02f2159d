import type { BetweenBatches } from '../consumers/consumer-options.js';
import type { GroupHost } from '../consumers/group-host.js';
import type { HealthCheck } from '../observability/health.js';
import type { Logger } from '../observability/logger.js';
import type { PostboxMetrics } from '../observability/metrics.js';
import type { OutboxWriter } from '../outbox/outbox-writer.js';
import type { OutgoingMessage } from '../outbox/outgoing-message.js';
import type { Executor } from '../sql/database.js';
import type { RoutedMessage } from './routed-message.js';

/** What a transport hands the router with each batch. */
export interface SourceBatchContext {
  tx: Executor | undefined;
  /** The log partition the batch belongs to; undefined for Kafka, whose deliveries may span partitions. */
  partition?: number;
  signal: AbortSignal;
  publish(messages: OutgoingMessage | readonly OutgoingMessage[]): Promise<string[]>;
  /** On the log, outside transactional mode: work committed with the batch's checkpoint (see BatchContext.atCommit). */
  atCommit?(work: (tx: Executor) => Promise<void>): void;
}

export type Deliver = (messages: RoutedMessage[], context: SourceBatchContext) => Promise<void>;

/**
 * A transport feeding one route: it must call `deliver` with batches in order, and commit its
 * position only after `deliver` resolves (inside the same transaction when `tx` is given).
 */
export interface RouteSource {
  readonly kind: 'log' | 'kafka';
  /** `betweenBatches`, on the log only: work each partition runs between its batches (parked retries). */
  start(deliver: Deliver, betweenBatches?: BetweenBatches): Promise<void>;
  /** Runs the work between batches of the partitions this process reads (or of one) after their batch in hand. */
  wakeBetweenBatches?(partition?: number): void;
  /** Stops fetching and lets the batch in hand finish; false when the deadline passed first. */
  stop(deadlineMs: number): Promise<boolean>;
  /** The transport's own view of its health, for /health/ready (e.g. a Kafka consumer that gave up). */
  health?(): Promise<HealthCheck>;
}

/** What a router runs on: consumer groups of the log, its database, and the outbox. Postbox is one. */
export type RouterHost = GroupHost & OutboxWriter;

export interface RouteSourceSettings {
  host: RouterHost;
  group: string;
  topics: readonly string[];
  transactional: boolean;
  batchSize: number | undefined;
  /** Partitions of the route's group on the log (see ConsumerOptions.partitions). */
  partitions: number | undefined;
  metrics: PostboxMetrics;
  logger: Logger;
}

export type RouteSourceFactory = (settings: RouteSourceSettings) => RouteSource;
