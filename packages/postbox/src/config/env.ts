import { z } from 'zod';
import { ConfigError } from '../errors/postbox-error.js';
import { connectionPasswords, maskPasswords, redactUrl } from '../sql/connection-secrets.js';
import { defaults } from './defaults.js';
import { parseDuration } from './duration.js';

export interface PostboxEnvConfig {
  databaseUrl: string | undefined;
  dataDir: string;
  pool: { max: number; idleTimeoutMs: number; maxLifetimeMs: number };
  payloadLimitBytes: number;
  logLevel: typeof defaults.logLevel;
  metrics: { enabled: boolean; host: string; port: number };
  outbox: {
    serviceName: string | undefined;
    batchSize: number;
    intervalMs: number;
    retryDelayMs: number;
  };
  cleanup: { enabled: boolean; intervalMs: number; afterDays: number };
}

export type Env = Record<string, string | undefined>;

export const positiveInt = z.coerce.number().int().positive();
export const boolText = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v));
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const postgresUrl = z
  .string()
  .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must start with postgres:// or postgresql://')
  .refine((v) => URL.canParse(v), 'is not a valid URL');

export function pick(env: Env, ...names: string[]): [string, string] | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') return [name, value.trim()];
  }
  return undefined;
}

/** The first non-blank variable of names, parsed by schema; a ConfigError names the variable when it fails. */
export function parse<T>(env: Env, names: string[], schema: z.ZodType<T>, fallback: T): T {
  const found = pick(env, ...names);
  if (!found) return fallback;
  const [name, raw] = found;
  const result = schema.safeParse(raw);
  if (!result.success) {
    const reason = result.error.issues.map((issue) => issue.message).join('; ');
    throw new ConfigError(
      'POSTBOX_ERR_CONFIG',
      `${name} ${reason} (got ${JSON.stringify(maskPasswords(redactUrl(raw), connectionPasswords(raw)))})`,
      {
        variable: name,
      },
    );
  }
  return result.data;
}

/** The first non-blank variable of names as a positive duration in milliseconds. */
export function duration(env: Env, names: string[], fallback: number): number {
  const found = pick(env, ...names);
  if (!found) return fallback;
  const [name, raw] = found;
  const ms = parseDuration(raw);
  if (ms === undefined || ms <= 0) {
    throw new ConfigError(
      'POSTBOX_ERR_CONFIG',
      `${name} must be a positive duration with a unit, such as 500ms, 5s, 1h or 7d (got ${JSON.stringify(raw)})`,
      { variable: name },
    );
  }
  return ms;
}

/** Reads Postbox settings from the environment; an invalid value throws a ConfigError naming the variable. */
export function loadEnvConfig(env: Env = process.env): PostboxEnvConfig {
  const databaseUrl = parse(env, ['DATABASE_URL', 'TIMESCALE_URI'], postgresUrl.optional(), undefined);
  return {
    databaseUrl,
    dataDir: pick(env, 'POSTBOX_DATA_DIR')?.[1] ?? defaults.dataDir,
    pool: {
      max: parse(env, ['DB_POOL_MAX'], positiveInt.max(10_000), defaults.pool.max),
      idleTimeoutMs: duration(env, ['DB_POOL_IDLE_TIMEOUT'], defaults.pool.idleTimeoutMs),
      maxLifetimeMs: duration(env, ['DB_POOL_MAX_LIFETIME'], defaults.pool.maxLifetimeMs),
    },
    payloadLimitBytes: parse(env, ['POSTBOX_PAYLOAD_LIMIT_BYTES'], positiveInt, defaults.payloadLimitBytes),
    logLevel: parse(env, ['LOG_LEVEL'], logLevel, defaults.logLevel),
    metrics: {
      enabled: parse(env, ['ENABLE_METRICS'], boolText, false),
      host: pick(env, 'METRICS_HOST')?.[1] ?? defaults.health.host,
      port: parse(env, ['METRICS_PORT'], z.coerce.number().int().min(0).max(65_535), defaults.health.port),
    },
    outbox: {
      serviceName: pick(env, 'OUTBOX_SERVICE_NAME')?.[1],
      batchSize: parse(env, ['OUTBOX_BATCH_SIZE'], positiveInt.max(100_000), defaults.consumer.batchSize),
      intervalMs: duration(env, ['OUTBOX_INTERVAL', 'OUTBOX_PROCESS_INTERVAL'], defaults.consumer.pollIntervalMs),
      retryDelayMs: duration(env, ['OUTBOX_RETRY_DELAY'], defaults.consumer.retryDelayMs),
    },
    cleanup: {
      enabled: parse(env, ['OUTBOX_CLEANUP_ENABLED'], boolText, defaults.cleanup.enabled),
      intervalMs: duration(env, ['OUTBOX_CLEANUP_INTERVAL'], defaults.cleanup.intervalMs),
      afterDays: parse(env, ['OUTBOX_CLEANUP_AFTER_DAYS'], positiveInt, defaults.cleanup.afterDays),
    },
  };
}
