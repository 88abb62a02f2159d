import { logSource, type RouteSourceFactory } from 'postbox';
import { kafkaSourceFromEnv } from 'postbox/kafka';
import type { AppConfig } from '../config.js';

/**
 * The transport of the history consumer: the PostgreSQL log, or with KAFKA_BROKERS the Kafka topic
 * that the relay forwards the log's topic to (and that any other producer may write to).
 */
export function historySource(config: AppConfig): RouteSourceFactory {
  if (!config.kafkaBrokers) return logSource();
  return kafkaSourceFromEnv(config.env, { groupId: config.history.group, topics: [config.history.topic], startFrom: 'earliest' });
}
