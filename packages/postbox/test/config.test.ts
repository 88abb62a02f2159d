import { describe, expect, it } from 'vitest';
import { parseDuration } from '../src/config/duration.js';
import { loadEnvConfig } from '../src/config/env.js';
import { ConfigError } from '../src/errors/postbox-error.js';
import { redactUrl } from '../src/sql/connection-secrets.js';

function configError(env: Record<string, string>): ConfigError {
  try {
    loadEnvConfig(env);
  } catch (error) {
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('environment configuration', () => {
  it('reads the seed names and their aliases', () => {
    const config = loadEnvConfig({
      TIMESCALE_URI: 'postgres://app:pw@db:5432/todo_history',
      OUTBOX_PROCESS_INTERVAL: '5s',
      OUTBOX_BATCH_SIZE: '10',
      OUTBOX_RETRY_DELAY: '10s',
      OUTBOX_CLEANUP_ENABLED: 'true',
      OUTBOX_CLEANUP_INTERVAL: '24h',
      OUTBOX_CLEANUP_AFTER_DAYS: '7',
      DB_POOL_MAX: '25',
      DB_POOL_IDLE_TIMEOUT: '1m',
      DB_POOL_MAX_LIFETIME: '5m',
      LOG_LEVEL: 'debug',
    });
    expect(config.databaseUrl).toBe('postgres://app:pw@db:5432/todo_history');
    expect(config.outbox).toMatchObject({ intervalMs: 5_000, batchSize: 10, retryDelayMs: 10_000 });
    expect(config.cleanup).toEqual({ enabled: true, intervalMs: 86_400_000, afterDays: 7 });
    expect(config.pool).toEqual({ max: 25, idleTimeoutMs: 60_000, maxLifetimeMs: 300_000 });
    expect(config.logLevel).toBe('debug');
  });

  it('prefers DATABASE_URL over TIMESCALE_URI and falls back to the defaults', () => {
    const config = loadEnvConfig({ DATABASE_URL: 'postgresql://a@h/one', TIMESCALE_URI: 'postgres://b@h/two' });
    expect(config.databaseUrl).toBe('postgresql://a@h/one');
    expect(loadEnvConfig({}).databaseUrl).toBeUndefined();
    expect(loadEnvConfig({}).pool.max).toBe(10);
  });

  it.each([
    ['DB_POOL_MAX', 'lots'],
    ['DB_POOL_MAX', '0'],
    ['OUTBOX_BATCH_SIZE', '-5'],
    ['OUTBOX_INTERVAL', '5'],
    ['DB_POOL_IDLE_TIMEOUT', 'soon'],
    ['LOG_LEVEL', 'loud'],
    ['OUTBOX_CLEANUP_ENABLED', 'maybe'],
    ['DATABASE_URL', 'mysql://root@localhost/db'],
  ])('stops on an invalid %s with a message that names it', (variable, value) => {
    const error = configError({ [variable]: value });
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.code).toBe('POSTBOX_ERR_CONFIG');
    expect(error.message.startsWith(variable)).toBe(true);
    expect(error.details.variable).toBe(variable);
  });

  it('never repeats a password from a bad URL', () => {
    const error = configError({ DATABASE_URL: 'postgres://user:hunter2@[bad' });
    expect(error.message).not.toContain('hunter2');
    expect(redactUrl('postgres://user:hunter2@host/db and postgresql://x:y@z/w')).toBe(
      'postgres://user:***@host/db and postgresql://x:***@z/w',
    );
  });

  it.each([
    ['a / in the password', 'postgres://user:se/cret99@[bad'],
    ['a # in the password', 'postgres://user:se#cret99@[bad'],
    ['a ? in the password', 'postgres://user:se?cret99@[bad'],
    ['a space in the password', 'postgres://user:se cret99@[bad'],
    ['an @ in the user name', 'postgres://us@er:secret99@[bad'],
  ])('never repeats a password of a bad URL with %s', (_, url) => {
    const error = configError({ DATABASE_URL: url });
    expect(error.message).toContain('DATABASE_URL');
    for (const part of ['secret99', 'cret99']) expect(error.message).not.toContain(part);
  });

  it('parses Go-style durations', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(parseDuration('1.5s')).toBe(1_500);
    expect(parseDuration('10')).toBeUndefined();
    expect(parseDuration('s')).toBeUndefined();
  });
});
