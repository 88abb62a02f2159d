import { z } from 'zod';
import { defaults } from '../../config/defaults.js';
import { boolText, duration, type Env, parse, positiveInt } from '../../config/env.js';
import type { KafkaSettings } from './kafka-client.js';
import { configError, kafkaSettingsFromEnv } from './kafka-env.js';

export interface KafkaRelayEnvConfig {
  enabled: boolean;
  serviceName: string | undefined;
  batchSize: number;
  pollIntervalMs: number;
  retryDelayMs: number;
  sendTimeoutMs: number;
  sendRetries: number;
  /** KAFKA_IDEMPOTENT: KafkaJS's idempotent producer; on by default, off only for brokers that refuse it. */
  idempotent: boolean;
  /** Undefined when OUTBOX_ENABLED is false and KAFKA_BROKERS is not set. */
  kafka: KafkaSettings | undefined;
}

const serviceName = z.string().max(defaults.maxNameLength - defaults.relay.groupSuffix.length, 'is too long');
const retries = z.coerce.number().int().min(0).max(100);

/**
 * The relay's settings from the seeds' variables: OUTBOX_ENABLED, OUTBOX_SERVICE_NAME, OUTBOX_BATCH_SIZE,
 * OUTBOX_INTERVAL (or OUTBOX_PROCESS_INTERVAL), OUTBOX_OPERATION_TIMEOUT, OUTBOX_RETRY_ATTEMPTS (or
 * OUTBOX_MAX_RETRIES), OUTBOX_RETRY_DELAY, KAFKA_BROKERS, KAFKA_CLIENT_ID, KAFKA_SSL and KAFKA_SASL_*.
 * An invalid value throws a ConfigError naming the variable.
 */
export function loadKafkaRelayConfig(env: Env = process.env): KafkaRelayEnvConfig {
  const enabled = parse(env, ['OUTBOX_ENABLED'], boolText, defaults.relay.enabled);
  const service = parse<string | undefined>(env, ['OUTBOX_SERVICE_NAME'], serviceName, undefined);
  const kafka = kafkaSettingsFromEnv(env, service ?? defaults.relay.clientId);
  if (enabled && !kafka)
    throw configError('KAFKA_BROKERS', 'is required when the relay is enabled (set OUTBOX_ENABLED=false to turn it off)');
  return {
    enabled,
    serviceName: service,
    batchSize: parse(env, ['OUTBOX_BATCH_SIZE'], positiveInt.max(100_000), defaults.relay.batchSize),
    pollIntervalMs: duration(env, ['OUTBOX_INTERVAL', 'OUTBOX_PROCESS_INTERVAL'], defaults.relay.pollIntervalMs),
    retryDelayMs: duration(env, ['OUTBOX_RETRY_DELAY'], defaults.relay.retryDelayMs),
    sendTimeoutMs: duration(env, ['OUTBOX_OPERATION_TIMEOUT'], defaults.relay.sendTimeoutMs),
    sendRetries: parse(env, ['OUTBOX_RETRY_ATTEMPTS', 'OUTBOX_MAX_RETRIES'], retries, defaults.relay.sendRetries),
    idempotent: parse(env, ['KAFKA_IDEMPOTENT'], boolText, defaults.relay.idempotent),
    kafka,
  };
}
