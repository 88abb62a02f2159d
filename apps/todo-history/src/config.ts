import { fileURLToPath } from 'node:url';
import { ConfigError, defaults, isPostboxError, loadEnvConfig, type PostboxEnvConfig, redactUrl } from 'postbox';
import { z } from 'zod';
import { appDefaults } from './defaults.js';
import type { Env } from './env.js';
import { otelList, tracingRequested, tracingServiceName } from './telemetry/tracing-env.js';

export type { Env };

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

export type OtlpProtocol = (typeof otlpProtocols)[number];

/** What OTEL_* asks of the OpenTelemetry SDK, which reads the variables itself; checked here so that a typo stops start-up. */
export interface TracingConfig {
  /** OTEL_TRACES_EXPORTER: otlp, zipkin and/or console. */
  exporters: string[];
  protocol: OtlpProtocol;
  /** Where OTLP spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT (plus /v1/traces over HTTP). */
  endpoint: string;
  serviceName: string;
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
  /**
   * OPS_TOKEN: the bearer token of the operations console's routes that change state. Without it
   * they work on a loopback HOST only; beyond loopback the console is read-only.
   */
  opsToken: string | undefined;
  bodyLimitBytes: number;
  publicDir: string;
  /** Undefined unless OTEL_* asks for traces (see tracingRequested). */
  tracing: TracingConfig | undefined;
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

const otlpProtocols = ['grpc', 'http/protobuf', 'http/json'] as const;
const traceExporterNames = ['otlp', 'zipkin', 'console'];
const otlpProtocol = z.enum(otlpProtocols, { error: `must be one of ${otlpProtocols.join(', ')}` });
const traceExporters = z
  .string()
  .transform(otelList)
  .refine(
    (names) => names.join(',') === 'none' || (names.length > 0 && names.every((name) => traceExporterNames.includes(name))),
    `must be a comma-separated list of ${traceExporterNames.join(', ')}, or none`,
  );
const endpoint = z
  .string()
  .refine((value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol), 'must be an http:// or https:// URL');
const otelBoolean = z
  .string()
  .refine((value) => ['true', 'false'].includes(value.toLowerCase()), 'must be true or false')
  .transform((value) => value.toLowerCase() === 'true');

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

/** Reads the OTEL_* variables the SDK would take for traces; every one that is set is checked, used or not. */
function tracingConfig(env: Env): TracingConfig | undefined {
  read(env, ['OTEL_SDK_DISABLED'], otelBoolean, false);
  const exporters = read(env, ['OTEL_TRACES_EXPORTER'], traceExporters, [appDefaults.tracing.exporter]);
  const generalProtocol = read(env, ['OTEL_EXPORTER_OTLP_PROTOCOL'], otlpProtocol.optional(), undefined);
  const protocol = read(env, ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'], otlpProtocol, generalProtocol ?? appDefaults.tracing.protocol);
  const generalEndpoint = read(env, ['OTEL_EXPORTER_OTLP_ENDPOINT'], endpoint.optional(), undefined);
  const tracesEndpoint = read(env, ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'], endpoint.optional(), undefined);
  if (!tracingRequested(env)) return undefined;
  const base = generalEndpoint ?? (protocol === 'grpc' ? appDefaults.tracing.grpcEndpoint : appDefaults.tracing.httpEndpoint);
  return {
    exporters,
    protocol,
    endpoint: tracesEndpoint ?? (protocol === 'grpc' ? base : `${base.replace(/\/+$/, '')}/v1/traces`),
    serviceName: tracingServiceName(env).name,
  };
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
      z.string().min(defaults.opsConsole.minTokenLength, `must be at least ${defaults.opsConsole.minTokenLength} characters`),
      undefined,
      true,
    ),
    bodyLimitBytes: appDefaults.bodyLimitBytes,
    publicDir: fileURLToPath(new URL('../public/', import.meta.url)),
    tracing: tracingConfig(env),
  };
}
