import { type DestinationStream, type Logger, pino } from 'pino';
import { defaults } from '../config/defaults.js';
import { redactUrl } from '../sql/connection-secrets.js';

export type { Logger };

export interface LoggerOptions {
  level?: string;
  name?: string;
  /** Where the JSON lines go; standard output by default. */
  destination?: DestinationStream;
}

/** An error as pino writes it, with connection-URL passwords masked in its message and stack. */
function redactedError(error: unknown): unknown {
  const serialised = pino.stdSerializers.err(error as Error) as unknown;
  if (typeof serialised !== 'object' || serialised === null) return serialised;
  const fields = serialised as Record<string, unknown>;
  for (const name of ['message', 'stack'] as const) {
    if (typeof fields[name] === 'string') fields[name] = redactUrl(fields[name]);
  }
  return fields;
}

/**
 * Structured JSON logs. Secrets are kept out three ways: fields named like a password or a
 * connection string are censored, and connection-URL passwords are masked in messages and in
 * logged errors (a driver or handler error may quote a URL).
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const settings = {
    name: options.name ?? 'postbox',
    level: options.level ?? defaults.logLevel,
    redact: {
      paths: ['password', '*.password', 'databaseUrl', '*.databaseUrl', 'connectionString', '*.connectionString'],
      censor: '***',
    },
    serializers: { err: redactedError, error: redactedError },
    hooks: {
      logMethod(this: Logger, args: Parameters<Logger['info']>, method: Logger['info']) {
        const masked = args.map((arg) => (typeof arg === 'string' ? redactUrl(arg) : arg)) as Parameters<Logger['info']>;
        method.apply(this, masked);
      },
    },
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

export const silentLogger: Logger = pino({ level: 'silent' });
