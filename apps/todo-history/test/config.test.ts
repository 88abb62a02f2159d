import { isPostboxError } from 'postbox';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

function configError(env: Record<string, string>): { variable: unknown; message: string } {
  try {
    loadConfig(env);
  } catch (error) {
    if (isPostboxError(error, 'POSTBOX_ERR_CONFIG')) return { variable: error.details.variable, message: error.message };
    throw error;
  }
  throw new Error(`no ConfigError for ${JSON.stringify(env)}`);
}

describe('configuration', () => {
  it('has working defaults: PGlite, port 3000 on loopback, the history topic and its consumer group', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      dataDir: '.todo-history-data',
      migrate: true,
      kafkaBrokers: undefined,
      opsToken: undefined,
      history: {
        topic: 'todo-history-events',
        group: 'todo-consumer-group-go',
        partitions: 4,
        retentionDays: undefined,
        partitionsAheadDays: 7,
      },
    });
    expect(config.postbox.databaseUrl).toBeUndefined();
  });

  it('reads the connection, server and Kafka variables and the app settings', () => {
    const config = loadConfig({
      TIMESCALE_URI: 'postgres://u:p@db:5432/todo_history',
      PORT: '8080',
      HOST: '0.0.0.0',
      KAFKA_BROKERS: 'kafka-1:9092, kafka-2:9092',
      KAFKA_TOPIC: 'history',
      KAFKA_GROUP_ID: 'history-readers',
      HISTORY_RETENTION_DAYS: '30',
      HISTORY_PARTITIONS: '16',
      MIGRATE: 'false',
      OPS_TOKEN: 'a-long-secret',
      LOG_LEVEL: 'debug',
      DB_POOL_MAX: '4',
    });
    expect(config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      migrate: false,
      kafkaBrokers: ['kafka-1:9092', 'kafka-2:9092'],
      opsToken: 'a-long-secret',
      history: { topic: 'history', group: 'history-readers', retentionDays: 30, partitions: 16 },
    });
    expect(config.postbox).toMatchObject({ databaseUrl: 'postgres://u:p@db:5432/todo_history', logLevel: 'debug', pool: { max: 4 } });
  });

  it('names the variable of a bad value, and never shows a secret', () => {
    expect(configError({ PORT: 'eighty' })).toMatchObject({ variable: 'PORT', message: expect.stringMatching(/^PORT /) });
    expect(configError({ PORT: '70000' }).variable).toBe('PORT');
    expect(configError({ KAFKA_BROKERS: 'localhost' })).toMatchObject({
      variable: 'KAFKA_BROKERS',
      message: expect.stringContaining('host:port'),
    });
    expect(configError({ KAFKA_TOPIC: 'bad topic' }).variable).toBe('KAFKA_TOPIC');
    expect(configError({ HISTORY_RETENTION_DAYS: '0' }).variable).toBe('HISTORY_RETENTION_DAYS');
    for (const partitions of ['0', '65', 'four', '4.5', '-4', '0x10', '1e1', '4 partitions']) {
      expect(configError({ HISTORY_PARTITIONS: partitions }), partitions).toMatchObject({
        variable: 'HISTORY_PARTITIONS',
        message: expect.stringMatching(/^HISTORY_PARTITIONS must be an integer from 1 to 64/),
      });
    }
    expect(loadConfig({ HISTORY_PARTITIONS: '1' }).history.partitions).toBe(1);
    expect(loadConfig({ HISTORY_PARTITIONS: '64' }).history.partitions).toBe(64);
    expect(configError({ MIGRATE: 'maybe' }).variable).toBe('MIGRATE');
    const token = configError({ OPS_TOKEN: 'pw1234' });
    expect(token.variable).toBe('OPS_TOKEN');
    expect(token.message).not.toContain('pw1234');
    const url = configError({ DATABASE_URL: 'mysql://admin:hunter2@db/app' });
    expect(url.variable).toBe('DATABASE_URL');
    expect(url.message).not.toContain('hunter2');
  });
});
