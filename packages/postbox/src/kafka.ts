/** postbox/kafka: the relay from the log to Kafka, and Kafka as a router's transport. Needs kafkajs. */
export type { KafkaSettings } from './transports/kafka/kafka-client.js';
export { createKafka } from './transports/kafka/kafka-client.js';
export { fromKafkaHeaders, kafkaHeaderNames, toKafkaHeaders } from './transports/kafka/kafka-headers.js';
export { type KafkaSourceOptions, kafkaSource, kafkaSourceFromEnv } from './transports/kafka/kafka-source.js';
export { type KafkaSourceEnvConfig, type KafkaStartFrom, loadKafkaSourceConfig } from './transports/kafka/kafka-source-config.js';
export {
  createKafkaRelay,
  type KafkaRelay,
  type KafkaRelayOptions,
  type KafkaRelayStats,
  kafkaRelayFromEnv,
} from './transports/kafka/relay.js';
export { type KafkaRelayEnvConfig, loadKafkaRelayConfig } from './transports/kafka/relay-config.js';
