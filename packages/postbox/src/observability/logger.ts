import { type Logger, pino } from 'pino';
import { defaults } from '../config/defaults.js';

export type { Logger };

/** Structured JSON logs; connection strings and secrets are redacted wherever they appear. */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({
    name: options.name ?? 'postbox',
    level: options.level ?? defaults.logLevel,
    redact: {
      paths: ['password', '*.password', 'databaseUrl', '*.databaseUrl', 'connectionString', '*.connectionString'],
      censor: '***',
    },
  });
}

export const silentLogger: Logger = pino({ level: 'silent' });
