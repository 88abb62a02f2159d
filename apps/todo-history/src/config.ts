import { fileURLToPath } from 'node:url';
import { ConfigError, defaults, isPostboxError, loadEnvConfig, type PostboxEnvConfig, redactUrl } from 'postbox';
import { z } from 'zod';
import { appDefaults } from './defaults.js';

export type Env = Record<string, string | undefined>;

export interface HistoryConfig {
  topic: string;
  group: string;
  batchSize: number;
  /** HISTORY_PARTITIONS: partitions of the group on the PostgreSQL log; a Kafka source has Kafka's own. */
  partitions: number;
  maxEventBytes: number;
  partitionsAheadDays: number;
  maintenanceIntervalMs: number;
  retentionDays: number | undefined;
  maxLagSeconds: number;
  maxLagMessages: number;
}

export interface AppConfig {
  port: number;
  host: string;
  /** DATABASE_URL / TIMESCALE_URI, pool, LOG_LEVEL, ENABLE_METRICS... as the library reads them. */
  postbox: PostboxEnvConfig;
  /** PGlite data directory when no URL is set; `memory` keeps it in memory. */
  dataDir: string;
  /** MIGRATE=false only checks that both schemas are current on a server. */
  migrate: boolean;
  /** KAFKA_BROKERS; undefined runs everything over the PostgreSQL log. */
  kafkaBrokers: string[] | undefined;
  /** The environment this was read from, for the library's own KAFKA_* and OUTBOX_* readers. */
  env: Env;
  history: HistoryConfig;
  /** OPS_TOKEN: required as a bearer token by the mutating ops routes when set. */
  opsToken: string | undefined;
  bodyLimitBytes: number;
  publicDir: string;
}

const boolText = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((value) => ['true', '1', 'yes'].includes(value));
const positiveInt = z.coerce.number().int().positive();
const brokerList = z
  .string()
  .transform((value) => value.split(',').map((broker) => broker.trim()))
  .refine((brokers) => brokers.every((broker) => /^[^\s:]+:\d{1,5}$/.test(broker)), 'must be a comma-separated list of host:port');
/** An integer written in plain digits (no sign, exponent or hex) from 1 to max. */
const integerFrom1To = (max: number) =>
  z
    .string()
    .refine((value) => /^\d{1,6}$/.test(value) && Number(value) >= 1 && Number(value) <= max, `must be an integer from 1 to ${max}`)
    .transform(Number);
const name = z
  .string()
  .max(200)
  .refine((value) => /^[A-Za-z0-9._-]+$/.test(value), 'may hold only letters, digits, dot, underscore and dash');

function pick(env: Env, names: readonly string[]): [string, string] | undefined {
  for (const variable of names) {
    const value = env[variable];
    if (value !== undefined && value.trim() !== '') return [variable, value.trim()];
  }
  return undefined;
}

/** The first non-blank variable of names, parsed by schema; a ConfigError names the variable when it is invalid. */
function read<T>(env: Env, names: readonly string[], schema: z.ZodType<T>, fallback: T, secret = false): T {
  const found = pick(env, names);
  if (!found) return fallback;
  const [variable, raw] = found;
  const result = schema.safeParse(raw);
  if (!result.success) {
    const reason = result.error.issues.map((issue) => issue.message).join('; ');
    const shown = secret ? '' : ` (got ${JSON.stringify(redactUrl(raw))})`;
    throw new ConfigError('POSTBOX_ERR_CONFIG', `${variable} ${reason}${shown}`, { variable });
  }
  return result.data;
}

const connectionVariables = new Set(['DATABASE_URL', 'TIMESCALE_URI']);

/**
 * The library's settings. An invalid connection URL is named with the reason, but its value is not
 * repeated: a URL too broken to parse can hide its password from any redaction.
 */
function libraryConfig(env: Env): PostboxEnvConfig {
  try {
    return loadEnvConfig(env);
  } catch (error) {
    const variable = isPostboxError(error, 'POSTBOX_ERR_CONFIG') ? String(error.details.variable) : undefined;
    if (!variable || !connectionVariables.has(variable)) throw error;
    const message = (error as ConfigError).message;
    const shown = message.indexOf(' (got ');
    throw new ConfigError('POSTBOX_ERR_CONFIG', `${shown === -1 ? variable : message.slice(0, shown)} (value not shown)`, { variable });
  }
}

/** Reads the app's settings; an invalid value throws a ConfigError whose message starts with the variable's name. */
export function loadConfig(env: Env = process.env): AppConfig {
  const postbox = libraryConfig(env);
  const retentionDays = read(env, ['HISTORY_RETENTION_DAYS'], positiveInt.max(36_500).optional(), appDefaults.history.retentionDays);
  return {
    port: read(env, ['PORT'], z.coerce.number().int().min(0).max(65_535), appDefaults.port),
    host: read(env, ['HOST'], z.string().min(1), appDefaults.host),
    postbox,
    dataDir: pick(env, ['POSTBOX_DATA_DIR'])?.[1] ?? appDefaults.dataDir,
    migrate: read(env, ['MIGRATE'], boolText, true),
    kafkaBrokers: read(env, ['KAFKA_BROKERS'], brokerList.optional(), undefined),
    env,
    history: {
      topic: read(env, ['KAFKA_TOPIC'], name, appDefaults.topic),
      group: read(env, ['KAFKA_GROUP_ID'], name, appDefaults.groupId),
      batchSize: read(env, ['HISTORY_BATCH_SIZE'], positiveInt.max(10_000), appDefaults.history.batchSize),
      partitions: read(env, ['HISTORY_PARTITIONS'], integerFrom1To(defaults.partitionBuckets), appDefaults.history.partitions),
      maxEventBytes: appDefaults.history.maxEventBytes,
      partitionsAheadDays: read(env, ['HISTORY_PARTITIONS_AHEAD_DAYS'], positiveInt.max(366), appDefaults.history.partitionsAheadDays),
      maintenanceIntervalMs: appDefaults.history.maintenanceIntervalMs,
      retentionDays,
      maxLagSeconds: read(env, ['HISTORY_MAX_LAG_SECONDS'], positiveInt, appDefaults.history.maxLagSeconds),
      maxLagMessages: appDefaults.history.maxLagMessages,
    },
    opsToken: read(
      env,
      ['OPS_TOKEN'],
      z.string().min(appDefaults.minOpsTokenLength, `must be at least ${appDefaults.minOpsTokenLength} characters`),
      undefined,
      true,
    ),
    bodyLimitBytes: appDefaults.bodyLimitBytes,
    publicDir: fileURLToPath(new URL('../public/', import.meta.url)),
  };
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127(\.\d{1,3}){3}$/.test(bare);
}
