import type { Kafka } from 'kafkajs';
import { z } from 'zod';
import { defaults } from '../../config/defaults.js';
import { type Env, parse } from '../../config/env.js';
import { ValidationError } from '../../errors/postbox-error.js';
import type { Logger } from '../../observability/logger.js';
import type { PostboxMetrics } from '../../observability/metrics.js';
import type { KafkaSettings } from './kafka-client.js';
import type { KafkaDecodeLimits } from './kafka-decode.js';
import { configError, kafkaSettingsFromEnv } from './kafka-env.js';

export type KafkaStartFrom = 'earliest' | 'latest';

export interface KafkaSourceOptions {
  /** Connection settings, or a KafkaJS client the application already has. */
  kafka: KafkaSettings | Kafka;
  /** The Kafka consumer group; defaults to the route's group. */
  groupId?: string;
  /** Kafka topics; default to the route's topics. */
  topics?: readonly string[];
  /** Where a new group starts; a group with committed offsets resumes from them. */
  startFrom?: KafkaStartFrom;
  /** Messages handed to the router in one delivery (one transaction in transactional mode); defaults to the route's batchSize. */
  maxBatchSize?: number;
  /** Bytes one fetch may return, over all partitions. */
  maxBytes?: number;
  maxBytesPerPartition?: number;
  maxWaitTimeMs?: number;
  /** Messages fetched but not yet committed above which partitions are paused until half have drained. */
  highWaterMark?: number;
  /** A delivery running longer than this pauses fetching of its partition until it ends. */
  slowDeliveryMs?: number;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Partitions whose fetched batches are handled at the same time; their chunks go to the router together, up to maxBatchSize. */
  partitionsConsumedConcurrently?: number;
  /** Larger values go to dead letters undecoded. */
  maxMessageBytes?: number;
  /** Retries of a failed delivery by KafkaJS, refetching from the last committed offset, before the consumer restarts. */
  retries?: number;
  initialRetryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Delay before a consumer stopped by an error KafkaJS does not retry is replaced; it doubles per failed restart. */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  logger?: Logger;
  /** Where kafka_consumer_lag goes; pass the router's (`router.metrics`). */
  metrics?: PostboxMetrics;
}

export interface ResolvedKafkaSourceOptions {
  startFrom: KafkaStartFrom;
  maxBatchSize: number | undefined;
  maxBytes: number;
  maxBytesPerPartition: number;
  maxWaitTimeMs: number;
  highWaterMark: number;
  slowDeliveryMs: number;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  partitionsConsumedConcurrently: number;
  limits: KafkaDecodeLimits;
  retries: number;
  initialRetryDelayMs: number;
  maxRetryDelayMs: number;
  restartDelayMs: number;
  maxRestartDelayMs: number;
}

function integer(name: keyof KafkaSourceOptions, value: number | undefined, fallback: number, min = 1): number {
  const resolved = value ?? fallback;
  if (!Number.isSafeInteger(resolved) || resolved < min) {
    throw new ValidationError(
      'POSTBOX_ERR_BAD_OPTION',
      `kafkaSource: ${name} must be an integer of at least ${min} (got ${String(value)}).`,
      {
        option: name,
      },
    );
  }
  return resolved;
}

/** The options with their defaults; a bad value throws a ValidationError naming the option. */
export function resolveKafkaSourceOptions(options: KafkaSourceOptions): ResolvedKafkaSourceOptions {
  const d = defaults.kafkaSource;
  const startFrom = options.startFrom ?? d.startFrom;
  if (startFrom !== 'earliest' && startFrom !== 'latest') {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `kafkaSource: startFrom must be earliest or latest (got ${String(startFrom)}).`, {
      option: 'startFrom',
    });
  }
  const sessionTimeoutMs = integer('sessionTimeoutMs', options.sessionTimeoutMs, d.sessionTimeoutMs);
  const heartbeatIntervalMs = integer('heartbeatIntervalMs', options.heartbeatIntervalMs, d.heartbeatIntervalMs);
  if (heartbeatIntervalMs >= sessionTimeoutMs) {
    throw new ValidationError(
      'POSTBOX_ERR_BAD_OPTION',
      `kafkaSource: heartbeatIntervalMs (${heartbeatIntervalMs}) must be below sessionTimeoutMs (${sessionTimeoutMs}); about a third of it is usual.`,
      { option: 'heartbeatIntervalMs' },
    );
  }
  const restartDelayMs = integer('restartDelayMs', options.restartDelayMs, d.restartDelayMs);
  const maxRestartDelayMs = integer('maxRestartDelayMs', options.maxRestartDelayMs, Math.max(d.maxRestartDelayMs, restartDelayMs));
  if (maxRestartDelayMs < restartDelayMs) {
    throw new ValidationError(
      'POSTBOX_ERR_BAD_OPTION',
      `kafkaSource: maxRestartDelayMs (${maxRestartDelayMs}) must not be below restartDelayMs (${restartDelayMs}).`,
      { option: 'maxRestartDelayMs' },
    );
  }
  return {
    startFrom,
    maxBatchSize: options.maxBatchSize === undefined ? undefined : integer('maxBatchSize', options.maxBatchSize, d.maxBatchSize),
    maxBytes: integer('maxBytes', options.maxBytes, d.maxBytes),
    maxBytesPerPartition: integer('maxBytesPerPartition', options.maxBytesPerPartition, d.maxBytesPerPartition),
    maxWaitTimeMs: integer('maxWaitTimeMs', options.maxWaitTimeMs, d.maxWaitTimeMs),
    highWaterMark: integer('highWaterMark', options.highWaterMark, d.highWaterMark),
    slowDeliveryMs: integer('slowDeliveryMs', options.slowDeliveryMs, d.slowDeliveryMs),
    sessionTimeoutMs,
    heartbeatIntervalMs,
    partitionsConsumedConcurrently: integer(
      'partitionsConsumedConcurrently',
      options.partitionsConsumedConcurrently,
      d.partitionsConsumedConcurrently,
    ),
    limits: {
      maxMessageBytes: integer('maxMessageBytes', options.maxMessageBytes, d.maxMessageBytes),
      rawPreviewBytes: d.rawPreviewBytes,
    },
    retries: integer('retries', options.retries, d.retries, 0),
    initialRetryDelayMs: integer('initialRetryDelayMs', options.initialRetryDelayMs, d.initialRetryDelayMs),
    maxRetryDelayMs: integer('maxRetryDelayMs', options.maxRetryDelayMs, d.maxRetryDelayMs),
    restartDelayMs,
    maxRestartDelayMs,
  };
}

export interface KafkaSourceEnvConfig {
  kafka: KafkaSettings;
  /** From KAFKA_TOPIC (comma-separated); undefined means the route's topics. */
  topics: string[] | undefined;
  /** From KAFKA_GROUP_ID; undefined means the route's group. */
  groupId: string | undefined;
  startFrom: KafkaStartFrom;
}

const topicList = z
  .string()
  .transform((text) => text.split(',').map((part) => part.trim()))
  .refine(
    (list) => list.every((topic) => /^[A-Za-z0-9._-]{1,249}$/.test(topic)),
    'must be a comma-separated list of topic names (letters, digits, dots, dashes, underscores)',
  );
const groupId = z.string().max(defaults.maxNameLength, `must be at most ${defaults.maxNameLength} characters`);
const startFrom = z
  .string()
  .transform((text) => text.toLowerCase())
  .pipe(z.enum(['earliest', 'latest']));

/**
 * The Kafka subscriber's settings from KAFKA_BROKERS (required), KAFKA_TOPIC, KAFKA_GROUP_ID,
 * KAFKA_CLIENT_ID, KAFKA_START_FROM, KAFKA_SSL and KAFKA_SASL_*. An invalid or missing value throws
 * a ConfigError naming the variable; the SASL password never appears in it.
 */
export function loadKafkaSourceConfig(env: Env = process.env): KafkaSourceEnvConfig {
  const kafka = kafkaSettingsFromEnv(env, defaults.kafkaSource.clientId);
  if (!kafka) throw configError('KAFKA_BROKERS', 'is required for the Kafka subscriber (a comma-separated list of host:port)');
  return {
    kafka,
    topics: parse<string[] | undefined>(env, ['KAFKA_TOPIC'], topicList, undefined),
    groupId: parse<string | undefined>(env, ['KAFKA_GROUP_ID'], groupId, undefined),
    startFrom: parse<KafkaStartFrom>(env, ['KAFKA_START_FROM'], startFrom, defaults.kafkaSource.startFrom),
  };
}
