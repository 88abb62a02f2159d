import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { defaults } from '../../config/defaults.js';
import type { Env } from '../../config/env.js';
import { PostboxError, ValidationError } from '../../errors/postbox-error.js';
import { inProcessSpan } from '../../observability/tracing.js';
import type { OutgoingMessage } from '../../outbox/outgoing-message.js';
import { backoffDelay } from '../../router/middleware/retry.js';
import type { Deliver, RouteSource, RouteSourceFactory, RouteSourceSettings, SourceBatchContext } from '../../router/route-source.js';
import type { RoutedMessage } from '../../router/routed-message.js';
import { redactUrl } from '../../sql/connection-secrets.js';
import type { Executor } from '../../sql/database.js';
import { Backpressure, type TopicPartition } from './kafka-backpressure.js';
import { createKafka, type KafkaSettings } from './kafka-client.js';
import { Coalescer } from './kafka-coalesce.js';
import { decodeKafkaMessage } from './kafka-decode.js';
import {
  type KafkaSourceOptions,
  loadKafkaSourceConfig,
  type ResolvedKafkaSourceOptions,
  resolveKafkaSourceOptions,
} from './kafka-source-config.js';
import { KafkaJSError } from './kafkajs.js';

export type { KafkaSourceOptions } from './kafka-source-config.js';

/** Consecutive messages of one partition, handed to the router in one delivery, possibly with other partitions' chunks. */
interface Chunk {
  partition: TopicPartition;
  messages: RoutedMessage[];
  firstOffset: string;
  lastOffset: string;
  highWatermark: string;
  payload: EachBatchPayload;
}

function isKafkaClient(kafka: KafkaSettings | Kafka): kafka is Kafka {
  return typeof (kafka as Kafka).consumer === 'function';
}

/** True when the promise resolves within ms; false when it rejects or the time runs out first. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = promise.then(
    () => true,
    () => false,
  );
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([settled, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Kafka topics as a route's transport: a KafkaJS consumer group whose batches go to the router in
 * offset order per partition; batches of partitions fetched together go in one delivery, up to
 * maxBatchSize messages. An offset is committed only after the router's delivery of every message
 * up to it resolved (and, in transactional mode, after the transaction holding the handler's
 * writes and dead letters committed). A delivery that throws commits nothing: KafkaJS fetches the
 * batch again, with backoff, and restarts the consumer when its retries run out, so a database
 * outage delays messages but never loses them. An error KafkaJS does not retry at all (a group
 * request the broker rejects, say) stops its consumer; the source then reports unhealthy and starts
 * a new consumer after restartDelayMs, doubling up to maxRestartDelayMs while the restarts fail.
 */
export function kafkaSource(options: KafkaSourceOptions): RouteSourceFactory {
  const resolved = resolveKafkaSourceOptions(options);
  return (settings) => createKafkaRouteSource(options, resolved, settings);
}

/**
 * A Kafka source configured from KAFKA_BROKERS, KAFKA_TOPIC, KAFKA_GROUP_ID, KAFKA_CLIENT_ID,
 * KAFKA_START_FROM, KAFKA_SSL and KAFKA_SASL_*; overrides win over the environment.
 */
export function kafkaSourceFromEnv(env: Env = process.env, overrides: Partial<KafkaSourceOptions> = {}): RouteSourceFactory {
  const config = loadKafkaSourceConfig(env);
  return kafkaSource({ kafka: config.kafka, topics: config.topics, groupId: config.groupId, startFrom: config.startFrom, ...overrides });
}

function createKafkaRouteSource(
  options: KafkaSourceOptions,
  resolved: ResolvedKafkaSourceOptions,
  settings: RouteSourceSettings,
): RouteSource {
  const groupId = options.groupId ?? settings.group;
  const topics = [...(options.topics ?? settings.topics)];
  if (!groupId) throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'kafkaSource: groupId must not be empty.', { option: 'groupId' });
  if (topics.length === 0 || topics.some((topic) => !topic)) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `kafkaSource: group ${groupId} needs at least one non-empty topic.`, {
      option: 'topics',
    });
  }
  if (settings.partitions !== undefined && settings.partitions !== 1) {
    throw new ValidationError(
      'POSTBOX_ERR_BAD_OPTION',
      `kafkaSource: group ${groupId} is partitioned by Kafka; a route's partitions option is for routes on the PostgreSQL log.`,
      { option: 'partitions' },
    );
  }
  const maxBatchSize = resolved.maxBatchSize ?? settings.batchSize ?? defaults.kafkaSource.maxBatchSize;
  const { host } = settings;
  const logger = (options.logger ?? settings.logger).child({ component: 'kafka-source', group: groupId });
  const kafka = isKafkaClient(options.kafka) ? options.kafka : createKafka(options.kafka, logger);
  const lagGauge = (options.metrics ?? settings.metrics).kafkaConsumerLag;
  let crashed: Error | undefined;
  const lagLabels = new Map<string, { group: string; topic: string; partition: string }>();
  const abort = new AbortController();
  const inFlight = new Set<Promise<void>>();
  let consumer: Consumer | undefined;
  let started = false;
  let stopping = false;
  let restartTimer: NodeJS.Timeout | undefined;
  let failedRestarts = 0;

  const backpressure = new Backpressure(resolved.highWaterMark, {
    pause(partition) {
      try {
        consumer?.pause([{ topic: partition.topic, partitions: [partition.partition] }]);
        logger.debug({ ...partition, inFlight: backpressure.inFlight }, 'partition paused');
      } catch (error) {
        logger.debug({ err: error, ...partition }, 'could not pause the partition');
      }
    },
    resume(partition) {
      if (stopping) return;
      try {
        consumer?.resume([{ topic: partition.topic, partitions: [partition.partition] }]);
        logger.debug({ ...partition, inFlight: backpressure.inFlight }, 'partition resumed');
      } catch (error) {
        logger.debug({ err: error, ...partition }, 'could not resume the partition');
      }
    },
  });

  const batchContext = (tx: Executor | undefined): SourceBatchContext => ({
    tx,
    signal: abort.signal,
    publish: (messages: OutgoingMessage | readonly OutgoingMessage[]) => (tx ? host.enqueue(tx, messages) : host.publish(messages)),
  });

  const reportLag = (partition: TopicPartition, highWatermark: string, lastOffset: string) => {
    if (!lagGauge) return;
    const labels = { group: groupId, topic: partition.topic, partition: String(partition.partition) };
    lagLabels.set(`${labels.topic}/${labels.partition}`, labels);
    const behind = BigInt(highWatermark) - BigInt(lastOffset) - 1n;
    lagGauge.set(labels, Number(behind > 0n ? behind : 0n));
  };

  const forgetLag = (keep: (topic: string, partition: number) => boolean) => {
    for (const [key, labels] of lagLabels) {
      if (keep(labels.topic, Number(labels.partition))) continue;
      lagGauge?.remove(labels);
      lagLabels.delete(key);
    }
  };

  /**
   * One delivery of chunks from one or more partitions, in a transaction when the route is
   * transactional, then one commit of their offsets. It heartbeats while it runs and pauses its
   * partitions when it runs long. When it throws, nothing of it is resolved or committed.
   */
  const deliverChunks = async (deliver: Deliver, chunks: Chunk[]): Promise<void> => {
    const messages = chunks.length === 1 ? (chunks[0] as Chunk).messages : chunks.flatMap((chunk) => chunk.messages);
    const slow = setTimeout(() => {
      for (const chunk of chunks) backpressure.slow(chunk.partition, true);
    }, resolved.slowDeliveryMs);
    const beat = setInterval(() => {
      chunks[0]?.payload.heartbeat().catch((error: unknown) => logger.debug({ err: error }, 'heartbeat during a delivery failed'));
    }, resolved.heartbeatIntervalMs);
    const topic =
      chunks.length === 1 ? (chunks[0] as Chunk).partition.topic : [...new Set(chunks.map((chunk) => chunk.partition.topic))].join(',');
    const attributes = {
      'messaging.system': 'kafka',
      'messaging.operation.type': 'process',
      'messaging.destination.name': topic,
      'messaging.consumer.group.name': groupId,
    };
    try {
      await inProcessSpan(`process ${topic}`, attributes, messages, () =>
        settings.transactional
          ? host.db.transaction((tx) => deliver(messages, batchContext(tx)))
          : deliver(messages, batchContext(undefined)),
      );
    } catch (error) {
      logger.error(
        {
          err: error,
          chunks: chunks.map((chunk) => `${chunk.partition.topic}/${chunk.partition.partition}@${chunk.firstOffset}-${chunk.lastOffset}`),
        },
        'delivery failed; its offsets stay uncommitted and KafkaJS fetches them again',
      );
      throw error;
    } finally {
      clearTimeout(slow);
      clearInterval(beat);
      for (const chunk of chunks) backpressure.slow(chunk.partition, false);
    }
    for (const chunk of chunks) chunk.payload.resolveOffset(chunk.lastOffset);
    const { payload } = chunks[0] as Chunk;
    try {
      await payload.commitOffsetsIfNecessary(payload.uncommittedOffsets());
    } catch (error) {
      logger.warn({ err: error }, 'offset commit failed; the delivered messages come again unless a later commit covers them');
      throw error;
    }
    for (const chunk of chunks) reportLag(chunk.partition, chunk.highWatermark, chunk.lastOffset);
  };

  /** One partition's batch, in chunks of at most maxBatchSize; each is committed by the delivery that carries it. */
  const handleBatch = async (coalescer: Coalescer<Chunk>, payload: EachBatchPayload): Promise<void> => {
    const { batch } = payload;
    if (stopping || batch.messages.length === 0) return;
    const partition = { topic: batch.topic, partition: batch.partition };
    const messages = batch.messages.map((message) => decodeKafkaMessage(batch.topic, batch.partition, message, resolved.limits));
    backpressure.admit(partition, messages.length);
    let pending = messages.length;
    try {
      for (let start = 0; start < messages.length; start += maxBatchSize) {
        if (stopping || !payload.isRunning()) return;
        const chunk: Chunk = {
          partition,
          messages: messages.slice(start, start + maxBatchSize),
          firstOffset: batch.messages[start]?.offset as string,
          lastOffset: batch.messages[Math.min(start + maxBatchSize, messages.length) - 1]?.offset as string,
          highWatermark: batch.highWatermark,
          payload,
        };
        try {
          await coalescer.submit(chunk, chunk.messages.length);
        } catch (error) {
          // KafkaJS's own errors keep their type, so that it rejoins the group after a rebalance.
          if (error instanceof KafkaJSError) throw error;
          throw new KafkaJSError(error instanceof Error ? error : String(error), { retriable: true });
        }
        pending -= chunk.messages.length;
        backpressure.release(chunk.messages.length);
        await payload.heartbeat();
      }
    } finally {
      backpressure.release(pending);
    }
  };

  /**
   * Builds, connects and runs one KafkaJS consumer; resolves after its first fetch, its crash, or
   * the ready timeout. A crash KafkaJS does not restart from (it restarts from retriable ones)
   * schedules a new consumer, so one rejected group request never ends consumption for good.
   */
  const launch = async (deliver: Deliver): Promise<void> => {
    const created = kafka.consumer({
      groupId,
      sessionTimeout: resolved.sessionTimeoutMs,
      heartbeatInterval: resolved.heartbeatIntervalMs,
      maxBytes: resolved.maxBytes,
      maxBytesPerPartition: resolved.maxBytesPerPartition,
      maxWaitTimeInMs: resolved.maxWaitTimeMs,
      retry: {
        retries: resolved.retries,
        initialRetryTime: resolved.initialRetryDelayMs,
        maxRetryTime: resolved.maxRetryDelayMs,
        restartOnFailure: async () => !stopping,
      },
    });
    consumer = created;
    created.on(created.events.GROUP_JOIN, ({ payload }) => {
      if (created !== consumer) return;
      crashed = undefined;
      logger.info({ memberId: payload.memberId, assignment: payload.memberAssignment }, 'joined the Kafka consumer group');
      forgetLag((topic, partition) => payload.memberAssignment[topic]?.includes(partition) ?? false);
    });
    created.on(created.events.FETCH, () => {
      if (created === consumer) failedRestarts = 0;
    });
    created.on(created.events.CRASH, ({ payload }) => {
      if (payload.restart || stopping || created !== consumer) return;
      // KafkaJS has disconnected it already.
      consumer = undefined;
      crashed = payload.error;
      scheduleRestart(deliver, payload.error);
    });
    try {
      await created.connect();
      await created.subscribe({ topics, fromBeginning: resolved.startFrom === 'earliest' });
      const coalescer = new Coalescer<Chunk>(maxBatchSize, (chunks) => deliverChunks(deliver, chunks));
      // A new group's position (for `latest`, the end of each partition) is fixed by its first fetch.
      const firstFetch = new Promise<'fetched' | 'crashed' | 'timed out'>((resolve) => {
        const done = (outcome: 'fetched' | 'crashed' | 'timed out') => {
          clearTimeout(timer);
          offFetch();
          offCrash();
          resolve(outcome);
        };
        const timer = setTimeout(() => done('timed out'), defaults.kafkaSource.readyTimeoutMs);
        const offFetch = created.on(created.events.FETCH, () => done('fetched'));
        const offCrash = created.on(created.events.CRASH, () => done('crashed'));
      });
      await created.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: resolved.partitionsConsumedConcurrently,
        eachBatch: (payload) => {
          coalescer.enter();
          const handled = handleBatch(coalescer, payload).finally(() => coalescer.leave());
          inFlight.add(handled);
          const forget = () => inFlight.delete(handled);
          handled.then(forget, forget);
          return handled;
        },
      });
      // stop() may have disconnected this consumer before run() joined the group again.
      if (stopping)
        throw new PostboxError('POSTBOX_ERR_CONSUMER_STATE', `The Kafka source of group ${groupId} was stopped while starting.`);
      const outcome = await firstFetch;
      if (outcome !== 'crashed')
        logger.info({ topics, startFrom: resolved.startFrom, maxBatchSize, firstFetch: outcome }, 'Kafka source started');
    } catch (error) {
      await created.disconnect().catch(() => undefined);
      if (consumer === created) consumer = undefined;
      throw error;
    }
  };

  const scheduleRestart = (deliver: Deliver, error: Error): void => {
    failedRestarts += 1;
    const restartInMs = backoffDelay(failedRestarts, {
      initialDelayMs: resolved.restartDelayMs,
      maxDelayMs: resolved.maxRestartDelayMs,
      multiplier: 2,
      jitter: defaults.kafkaSource.restartJitter,
    });
    logger.error(
      { err: error, restartInMs, failedRestarts },
      'Kafka consumer stopped on an error KafkaJS does not retry; a new consumer starts after the delay',
    );
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      if (stopping) return;
      launch(deliver).catch((launchError: unknown) => {
        if (stopping) return;
        crashed = launchError instanceof Error ? launchError : new Error(String(launchError));
        scheduleRestart(deliver, crashed);
      });
    }, restartInMs);
  };

  return {
    kind: 'kafka',
    async start(deliver) {
      if (started) throw new PostboxError('POSTBOX_ERR_CONSUMER_STATE', `The Kafka source of group ${groupId} was already started.`);
      started = true;
      try {
        await launch(deliver);
      } catch (error) {
        started = false;
        throw error;
      }
    },

    async health() {
      const name = `kafka-source:${groupId}`;
      if (crashed)
        return {
          name,
          status: 'unhealthy' as const,
          detail: `restarting after an error KafkaJS does not retry: ${redactUrl(crashed.message)}`,
        };
      if (!consumer) return { name, status: 'unhealthy' as const, detail: 'not running' };
      return { name, status: 'healthy' as const };
    },
    async stop(deadlineMs) {
      if (!started || stopping) return true;
      stopping = true;
      clearTimeout(restartTimer);
      restartTimer = undefined;
      const current = consumer;
      if (!current) {
        logger.info('Kafka source stopped while waiting to restart its consumer');
        return true;
      }
      const stopBegan = Date.now();
      try {
        current.pause(topics.map((topic) => ({ topic })));
      } catch (error) {
        logger.debug({ err: error }, 'could not pause fetching before stopping');
      }
      const finished = await within(Promise.all([...inFlight]), deadlineMs);
      if (!finished) abort.abort(new PostboxError('POSTBOX_ERR_CONSUMER_STATE', 'Stop deadline passed.'));
      const disconnected = await within(
        current.disconnect().catch((error: unknown) => {
          logger.warn({ err: error }, 'Kafka consumer did not disconnect cleanly');
          throw error;
        }),
        Math.max(deadlineMs - (Date.now() - stopBegan), 1_000),
      );
      forgetLag(() => false);
      logger.info({ finished, disconnected }, 'Kafka source stopped');
      return finished && disconnected;
    },
  };
}
