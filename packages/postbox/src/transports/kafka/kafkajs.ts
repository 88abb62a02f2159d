import { loadOptionalPeer } from '../../peers/optional-peer.js';

/**
 * KafkaJS, loaded once when `postbox/kafka` is imported. Every module of the Kafka transport takes
 * its values from here and only types from 'kafkajs' itself, so that a missing install reports the
 * command to run rather than an unresolved import.
 */
const { default: kafkajs } = await loadOptionalPeer('kafkajs', 'postbox/kafka', () => import('kafkajs'));

export const { Kafka, KafkaJSError, Partitioners, logLevel } = kafkajs;
