import { deadLetter, type Executor, type Middleware, type RouteOptions } from 'postbox';
import type { HistoryConfig } from '../config.js';
import { type DecodedEvent, decodeHistoryEvent } from './history-event.js';
import type { HistoryMetrics } from './history-metrics.js';
import { toHistoryRow } from './history-row.js';
import { type HistoryTransport, logTransport } from './history-source.js';
import { writeHistory } from './history-writer.js';

/**
 * Sends a message that could not be decoded to dead letters at once. The route turns the router's
 * own dead-letter step off, so that any other failure (the database is down, the table is
 * missing, permissions were revoked) fails the whole batch instead: its checkpoint does not move,
 * and the batch is read again after a backoff until the database is back. Decoding checks every
 * value the table could refuse, so an insert never fails because of one message.
 */
export function deadLetterUndecodable(db: Executor): Middleware {
  const store = deadLetter(db);
  return (next) => {
    const storeNow = store(next);
    return (message, context) => (message.decodeError ? storeNow(message, context) : next(message, context));
  };
}

/**
 * The history consumer: the todo-history events of `config.topic` into todo_event_logs, one
 * batched insert per batch, in the transaction that also moves the checkpoint of the batch's
 * partition. The transport is a parameter: by default the PostgreSQL log, with the group split into
 * `config.partitions` partitions by key (the groupId), each read in order and committed on its
 * own; a Kafka source (kafkaSource) plugs in unchanged, split by the topic's partitions.
 */
export function historyRoute(
  config: HistoryConfig,
  db: Executor,
  transport: HistoryTransport = logTransport(config),
  metrics?: HistoryMetrics,
): RouteOptions<DecodedEvent> {
  return {
    name: 'todo-history',
    group: config.group,
    topics: [config.topic],
    source: transport.source,
    partitions: transport.partitions,
    transactional: true,
    batchSize: config.batchSize,
    decode: (message) => decodeHistoryEvent(message, config.maxEventBytes),
    handleBatch: async (messages, context) => {
      if (!context.tx) throw new Error('The history consumer needs a transactional source: its rows commit with the checkpoint.');
      const stored = await writeHistory(context.tx, messages.map(toHistoryRow));
      metrics?.stored.inc(stored);
      metrics?.duplicates.inc(messages.length - stored);
    },
    retry: false,
    deadLetter: false,
    use: [deadLetterUndecodable(db)],
  };
}
