import type { Consumer } from '../consumers/consumer.js';
import type { StartFrom } from '../consumers/group-store.js';
import type { LogMessage } from '../log/message.js';
import type { RouteSourceFactory } from './route-source.js';
import type { RoutedMessage } from './routed-message.js';

export function fromLogMessage(message: LogMessage): RoutedMessage {
  return {
    id: message.id,
    topic: message.topic,
    type: message.type,
    key: message.key,
    payload: message.payload,
    headers: message.headers,
    createdAt: message.createdAt,
    source: { kind: 'log', transactionId: message.transactionId, globalPosition: message.globalPosition },
  };
}

export interface LogSourceOptions {
  startFrom?: StartFrom;
  ephemeral?: boolean;
  pollIntervalMs?: number;
  leaseTtlMs?: number;
}

/** The PostgreSQL log as a route's transport: a consumer group whose checkpoint commits after each batch. */
export function logSource(options: LogSourceOptions = {}): RouteSourceFactory {
  return (settings) => {
    let consumer: Consumer | undefined;
    return {
      kind: 'log',
      async start(deliver, betweenBatches) {
        consumer = settings.host.consumer({
          ...options,
          group: settings.group,
          topics: settings.topics,
          transactional: settings.transactional,
          batchSize: settings.batchSize,
          partitions: settings.partitions,
          handleBatch: (messages, context) => deliver(messages.map(fromLogMessage), context),
          betweenBatches,
        });
        await consumer.start();
      },
      stop: (deadlineMs) => consumer?.stop(deadlineMs) ?? Promise.resolve(true),
      wakeBetweenBatches: (partition) => consumer?.wakeBetweenBatches(partition),
    };
  };
}
