import { logSource, type RouteSourceFactory } from 'postbox';
import { kafkaSourceFromEnv } from 'postbox/kafka';
import type { AppConfig, HistoryConfig } from '../config.js';

/** Where the history consumer reads, and how its group is split. */
export interface HistoryTransport {
  source: RouteSourceFactory;
  /** Partitions of the group on the PostgreSQL log; undefined on Kafka, whose topic partitions split the group. */
  partitions: number | undefined;
}

/** The PostgreSQL log, its group split into HISTORY_PARTITIONS partitions by the events' key (the groupId). */
export function logTransport(history: HistoryConfig): HistoryTransport {
  return { source: logSource(), partitions: history.partitions };
}

/**
 * The transport of the history consumer: the PostgreSQL log, or with KAFKA_BROKERS the Kafka topic
 * that the relay forwards the log's topic to (and that any other producer may write to).
 */
export function historyTransport(config: AppConfig): HistoryTransport {
  if (!config.kafkaBrokers) return logTransport(config.history);
  return {
    source: kafkaSourceFromEnv(config.env, { groupId: config.history.group, topics: [config.history.topic], startFrom: 'earliest' }),
    partitions: undefined,
  };
}
