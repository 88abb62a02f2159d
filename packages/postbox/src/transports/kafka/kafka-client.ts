import type { Kafka as KafkaClient, KafkaConfig, logCreator } from 'kafkajs';
import { type Logger, silentLogger } from '../../observability/logger.js';
import { Kafka, logLevel as KafkaLogLevel } from './kafkajs.js';

export interface KafkaSettings {
  brokers: readonly string[];
  clientId?: string;
  ssl?: boolean;
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
}

/** KafkaJS log lines go to pino, at the matching level, never to the console. */
function pinoLogCreator(logger: Logger): logCreator {
  return () =>
    ({ level, log }) => {
      const { message, ...extra } = log;
      const fields = { kafka: extra };
      if (level === KafkaLogLevel.ERROR) logger.error(fields, message);
      else if (level === KafkaLogLevel.WARN) logger.warn(fields, message);
      else if (level === KafkaLogLevel.INFO) logger.debug(fields, message);
      else logger.trace(fields, message);
    };
}

export function createKafka(settings: KafkaSettings, logger: Logger = silentLogger): KafkaClient {
  const config: KafkaConfig = {
    clientId: settings.clientId ?? 'postbox',
    brokers: [...settings.brokers],
    ssl: settings.ssl,
    connectionTimeout: settings.connectionTimeoutMs,
    requestTimeout: settings.requestTimeoutMs,
    logLevel: KafkaLogLevel.WARN,
    logCreator: pinoLogCreator(logger.child({ component: 'kafkajs' })),
  };
  if (settings.sasl) config.sasl = { ...settings.sasl } as KafkaConfig['sasl'];
  return new Kafka(config);
}
