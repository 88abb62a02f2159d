import { z } from 'zod';
import { boolText, type Env, parse, pick } from '../../config/env.js';
import { ConfigError } from '../../errors/postbox-error.js';
import type { KafkaSettings } from './kafka-client.js';

type SaslMechanism = NonNullable<KafkaSettings['sasl']>['mechanism'];

const brokerAddress = /^(?:\[[0-9a-f:.]+\]|[a-z0-9_.-]+):\d{1,5}$/i;
const brokerList = z
  .string()
  .transform((text) => text.split(',').map((part) => part.trim()))
  .refine((list) => list.every((broker) => brokerAddress.test(broker)), 'must be a comma-separated list of host:port');
const clientId = z.string().regex(/^[A-Za-z0-9._-]{1,255}$/, 'must be 1 to 255 letters, digits, dots, dashes or underscores');
const mechanism = z
  .string()
  .transform((text) => text.toLowerCase())
  .pipe(z.enum(['plain', 'scram-sha-256', 'scram-sha-512']));

export function configError(variable: string, reason: string): ConfigError {
  return new ConfigError('POSTBOX_ERR_CONFIG', `${variable} ${reason}`, { variable });
}

/** SASL from KAFKA_SASL_*; the password is only checked for presence, so it never reaches a message. */
function saslFromEnv(env: Env): KafkaSettings['sasl'] {
  const chosen = parse<SaslMechanism | undefined>(env, ['KAFKA_SASL_MECHANISM'], mechanism, undefined);
  const username = pick(env, 'KAFKA_SASL_USERNAME')?.[1];
  const password = env.KAFKA_SASL_PASSWORD;
  if (!chosen) {
    if (username !== undefined || password) {
      throw configError(
        'KAFKA_SASL_MECHANISM',
        'is required when KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set (plain, scram-sha-256 or scram-sha-512)',
      );
    }
    return undefined;
  }
  if (username === undefined) throw configError('KAFKA_SASL_USERNAME', `is required when KAFKA_SASL_MECHANISM is ${chosen}`);
  if (!password) throw configError('KAFKA_SASL_PASSWORD', `is required when KAFKA_SASL_MECHANISM is ${chosen}`);
  return { mechanism: chosen, username, password };
}

/**
 * The connection settings of KAFKA_BROKERS, KAFKA_CLIENT_ID, KAFKA_SSL and KAFKA_SASL_MECHANISM,
 * _USERNAME and _PASSWORD; undefined when KAFKA_BROKERS is not set. An invalid value throws a
 * ConfigError naming the variable.
 */
export function kafkaSettingsFromEnv(env: Env, fallbackClientId: string): KafkaSettings | undefined {
  const brokers = parse<string[] | undefined>(env, ['KAFKA_BROKERS'], brokerList, undefined);
  const settings = {
    clientId: parse(env, ['KAFKA_CLIENT_ID'], clientId, fallbackClientId),
    ssl: parse(env, ['KAFKA_SSL'], boolText, false),
    sasl: saslFromEnv(env),
  };
  return brokers ? { brokers, ...settings } : undefined;
}
