import type { Kafka, Producer, TopicMessages } from 'kafkajs';
import { Partitioners } from './kafkajs.js';

export interface RelayProducerOptions {
  idempotent: boolean;
  /** The longest one send may take, connecting and the broker's acknowledgement included. */
  sendTimeoutMs: number;
  retries: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
}

export interface RelayProducer {
  /** Resolves once every partition's leader and its replicas (acks -1) have the records. */
  send(topicMessages: TopicMessages[], signal: AbortSignal): Promise<void>;
  disconnect(): Promise<void>;
}

/**
 * A KafkaJS producer that keeps per-partition order: one request in flight per broker, and each
 * send starts only once the previous one settled, even one the caller stopped waiting for after
 * its timeout. The producer connects on the first send, so a broker outage at start-up is just a
 * failed batch that is retried.
 */
export function createRelayProducer(kafka: Kafka, options: RelayProducerOptions): RelayProducer {
  const producer: Producer = kafka.producer({
    idempotent: options.idempotent,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: options.retries, initialRetryTime: options.retryDelayMs, maxRetryTime: options.maxRetryDelayMs },
  });
  let connected = false;
  producer.on(producer.events.DISCONNECT, () => {
    connected = false;
  });
  let previous: Promise<unknown> = Promise.resolve();

  return {
    send(topicMessages, signal) {
      const operation = previous.then(async () => {
        signal.throwIfAborted();
        if (!connected) {
          await producer.connect();
          connected = true;
        }
        await producer.sendBatch({ topicMessages, acks: -1, timeout: options.sendTimeoutMs });
      });
      previous = operation.catch(() => undefined);
      return withDeadline(operation, options.sendTimeoutMs, signal);
    },
    async disconnect() {
      await producer.disconnect();
      connected = false;
    },
  };
}

function withDeadline<T>(operation: Promise<T>, timeoutMs: number, signal: AbortSignal): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Kafka did not acknowledge the batch within ${timeoutMs} ms.`)), timeoutMs);
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([operation, limit]).finally(() => {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  });
}
