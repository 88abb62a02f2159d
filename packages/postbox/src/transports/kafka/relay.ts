import type { Kafka } from 'kafkajs';
import { defaults } from '../../config/defaults.js';
import type { Env } from '../../config/env.js';
import type { ConsumerState } from '../../consumers/consumer.js';
import type { GroupHost } from '../../consumers/group-host.js';
import { groupStatuses } from '../../consumers/status.js';
import { ValidationError } from '../../errors/postbox-error.js';
import type { HealthCheck } from '../../observability/health.js';
import type { Logger } from '../../observability/logger.js';
import type { PostboxMetrics } from '../../observability/metrics.js';
import { redactUrl } from '../../sql/connection-secrets.js';
import { createKafka, type KafkaSettings } from './kafka-client.js';
import { toTopicMessages } from './relay-batch.js';
import { loadKafkaRelayConfig } from './relay-config.js';
import { createRelayProducer } from './relay-producer.js';
import { inRelaySendSpan } from './relay-span.js';

export interface KafkaRelayOptions {
  /** Connection settings, or a KafkaJS client the application already has. */
  kafka: KafkaSettings | Kafka;
  /** Log topics to forward. */
  topics: readonly string[];
  /** The Kafka topic of each log topic; by default the same name. */
  topicMap?: (logTopic: string) => string;
  /** The relay's consumer group; defaults to `<serviceName>-relay`, or `postbox-relay` without a service name. */
  group?: string;
  serviceName?: string;
  /** Messages read from the log and sent in one produce call. */
  batchSize?: number;
  /**
   * Partitions of the relay's group on the log, by key: each is sent by its own producer, in
   * parallel with the others, and messages of one key stay in order. The processes running the
   * relay share them. 1 by default; fixed when the relay's group is created.
   */
  partitions?: number;
  pollIntervalMs?: number;
  /** Delay before a failed batch is sent again; it doubles up to maxRetryDelayMs. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** The longest one batch's send may take (OUTBOX_OPERATION_TIMEOUT). */
  sendTimeoutMs?: number;
  /** KafkaJS retries within one send, and their first and largest delay. */
  sendRetries?: number;
  sendRetryDelayMs?: number;
  sendRetryMaxDelayMs?: number;
  /**
   * KafkaJS's idempotent producer: the broker drops a record the producer resent after a lost
   * acknowledgement. Keep it on for real clusters; librdkafka's mock cluster refuses it, so tests turn it off.
   */
  idempotent?: boolean;
  /** More messages than this waiting to be relayed makes health() degraded. */
  maxPendingMessages?: number;
  /** A new group starts at the beginning of its topics (earliest) or at messages committed from now on (latest). */
  startFrom?: 'earliest' | 'latest';
  leaseTtlMs?: number;
  /** Identifies this process in the group's lease. */
  owner?: string;
  metrics?: PostboxMetrics;
  logger?: Logger;
}

export interface KafkaRelayStats {
  group: string;
  state: ConsumerState;
  /** Messages of the relayed topics that the group has not checkpointed yet. */
  pending: number;
  /** Age of the oldest of them, in seconds (0 when none). */
  oldestPendingSeconds: number;
  /** Messages Kafka acknowledged since this relay started (a batch resent after a crash counts again). */
  published: number;
  /** Batch sends that failed since this relay started; each is retried. */
  failed: number;
  lastError: string | null;
  lastErrorAt: Date | null;
  lastPublishedAt: Date | null;
}

export interface KafkaRelay {
  readonly group: string;
  readonly state: ConsumerState;
  start(): Promise<void>;
  /**
   * Stops fetching, lets the batch in hand finish and commit, then disconnects the producer.
   * Resolves false when the deadline passed first (that batch is sent again on the next start).
   */
  stop(deadlineMs?: number): Promise<boolean>;
  stats(): Promise<KafkaRelayStats>;
  health(): Promise<HealthCheck>;
}

function isKafkaClient(kafka: KafkaSettings | Kafka): kafka is Kafka {
  return typeof (kafka as Kafka).producer === 'function';
}

function groupName(options: KafkaRelayOptions): string {
  if (options.group) return options.group;
  return options.serviceName ? `${options.serviceName}${defaults.relay.groupSuffix}` : defaults.relay.group;
}

/** Error text with URL passwords and the SASL password replaced, fit for logs, stats and the group's last error. */
function redactor(kafka: KafkaSettings | Kafka): (error: unknown) => string {
  const password = isKafkaClient(kafka) ? undefined : kafka.sasl?.password;
  return (error) => {
    const named = error instanceof Error && error.name !== 'Error' ? `${error.name}: ${error.message}` : undefined;
    const text = redactUrl(named ?? (error instanceof Error ? error.message : String(error)));
    return password ? text.replaceAll(password, '***') : text;
  };
}

/**
 * Forwards log topics to Kafka. It is a consumer group (non-transactional) whose batch handler sends
 * the batch with one sendBatch call and returns only once the brokers acknowledged it (acks -1), so
 * the checkpoint never passes a message Kafka does not have. A failed send is retried with backoff;
 * a crash resends at most the batch in hand. Each message's key is its Kafka key, and a batch is in
 * log order with one request in flight per broker, so messages of one key keep their order. With
 * partitions, each log partition has a producer of its own and they send in parallel; a key's
 * messages are all in one partition, so they stay in order.
 */
export function createKafkaRelay(host: GroupHost, options: KafkaRelayOptions): KafkaRelay {
  const group = groupName(options);
  const sendRetries = options.sendRetries ?? defaults.relay.sendRetries;
  const idempotent = options.idempotent ?? defaults.relay.idempotent;
  if (idempotent && sendRetries < 1) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'An idempotent relay needs sendRetries of at least 1.', { option: 'sendRetries' });
  }
  const logger = (options.logger ?? host.logger).child({ component: 'kafka-relay', group });
  const kafka = isKafkaClient(options.kafka) ? options.kafka : createKafka(options.kafka, logger);
  const redact = redactor(options.kafka);
  const topicFor = options.topicMap ?? ((topic: string) => topic);
  const maxPendingMessages = options.maxPendingMessages ?? defaults.relay.maxPendingMessages;
  const metrics = options.metrics;
  const producerOptions = {
    idempotent,
    sendTimeoutMs: options.sendTimeoutMs ?? defaults.relay.sendTimeoutMs,
    retries: sendRetries,
    retryDelayMs: options.sendRetryDelayMs ?? defaults.relay.sendRetryDelayMs,
    maxRetryDelayMs: options.sendRetryMaxDelayMs ?? defaults.relay.sendRetryMaxDelayMs,
  };
  // One producer per log partition: each sends its partition's batches one at a time, so a key's
  // messages stay in order, while the partitions send in parallel.
  const producers = new Map<number, ReturnType<typeof createRelayProducer>>();
  const producerFor = (partition: number) => {
    let producer = producers.get(partition);
    if (!producer) {
      producer = createRelayProducer(kafka, producerOptions);
      producers.set(partition, producer);
    }
    return producer;
  };

  let published = 0;
  let failed = 0;
  let lastSendFailed = false;
  let lastError: string | null = null;
  let lastErrorAt: Date | null = null;
  let lastPublishedAt: Date | null = null;

  const consumer = host.consumer({
    group,
    topics: options.topics,
    startFrom: options.startFrom,
    batchSize: options.batchSize ?? defaults.relay.batchSize,
    partitions: options.partitions,
    pollIntervalMs: options.pollIntervalMs ?? defaults.relay.pollIntervalMs,
    retryDelayMs: options.retryDelayMs ?? defaults.relay.retryDelayMs,
    maxRetryDelayMs: options.maxRetryDelayMs ?? defaults.relay.maxRetryDelayMs,
    leaseTtlMs: options.leaseTtlMs,
    owner: options.owner,
    logger,
    onError: (error) => {
      lastError = redact(error);
      lastErrorAt = new Date();
    },
    handleBatch: async (messages, context) => {
      const started = performance.now();
      const batch = toTopicMessages(messages, topicFor);
      const kafkaTopic = batch.length === 1 ? (batch[0] as { topic: string }).topic : undefined;
      try {
        await inRelaySendSpan(kafkaTopic, messages, () => producerFor(context.partition).send(batch, context.signal));
      } catch (error) {
        failed += 1;
        lastSendFailed = true;
        const text = redact(error);
        if (metrics) {
          metrics.outboxErrors.inc();
          for (const { topic, messages: sent } of batch) metrics.outboxEventsProcessed.inc({ topic, status: 'failed' }, sent.length);
        }
        throw new Error(`Kafka send of ${messages.length} messages failed: ${text}`);
      }
      published += messages.length;
      lastSendFailed = false;
      lastPublishedAt = new Date();
      if (metrics) {
        const seconds = (performance.now() - started) / 1000;
        for (const { topic, messages: sent } of batch) {
          metrics.outboxEventsProcessed.inc({ topic, status: 'published' }, sent.length);
          metrics.outboxProcessingDuration.observe({ topic }, seconds);
        }
      }
    },
  });

  const stats = async (): Promise<KafkaRelayStats> => {
    const [status] = await groupStatuses(host.db, group);
    return {
      group,
      state: consumer.state,
      pending: status?.lagMessages ?? 0,
      oldestPendingSeconds: status?.lagSeconds ?? 0,
      published,
      failed,
      lastError,
      lastErrorAt,
      lastPublishedAt,
    };
  };

  return {
    group,
    get state() {
      return consumer.state;
    },
    start: () => consumer.start(),
    async stop(deadlineMs = defaults.shutdownDeadlineMs) {
      const finished = await consumer.stop(deadlineMs);
      await Promise.all(
        [...producers.values()].map((producer) =>
          producer.disconnect().catch((error) => logger.warn({ error: redact(error) }, 'kafka producer disconnect failed')),
        ),
      );
      producers.clear();
      return finished;
    },
    stats,
    async health() {
      const name = `kafka-relay:${group}`;
      const current = await stats();
      if (current.state === 'idle' || current.state === 'stopped' || current.state === 'stopping') {
        return { name, status: 'unhealthy', detail: `relay is ${current.state}` };
      }
      if (lastSendFailed) return { name, status: 'degraded', detail: `last send failed: ${current.lastError ?? 'unknown error'}` };
      if (current.pending > maxPendingMessages) {
        return { name, status: 'degraded', detail: `${current.pending} messages pending (over ${maxPendingMessages})` };
      }
      return { name, status: 'healthy', detail: current.state === 'standby' ? 'standby: another process holds the group' : undefined };
    },
  };
}

/**
 * A relay configured from the environment (see loadKafkaRelayConfig), not started; undefined when
 * OUTBOX_ENABLED is false. Options given here win over the environment; Kafka comes from KAFKA_*.
 */
export function kafkaRelayFromEnv(
  host: GroupHost,
  options: Omit<KafkaRelayOptions, 'kafka'>,
  env: Env = process.env,
): KafkaRelay | undefined {
  const config = loadKafkaRelayConfig(env);
  if (!config.enabled || !config.kafka) return undefined;
  return createKafkaRelay(host, {
    serviceName: config.serviceName,
    batchSize: config.batchSize,
    pollIntervalMs: config.pollIntervalMs,
    retryDelayMs: config.retryDelayMs,
    sendTimeoutMs: config.sendTimeoutMs,
    sendRetries: config.sendRetries,
    idempotent: config.idempotent,
    ...options,
    kafka: config.kafka,
  });
}
