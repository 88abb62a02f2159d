import { Option } from 'commander';
import { loadEnvConfig, type PostboxEnvConfig } from '../config/env.js';
import { ConfigError } from '../errors/postbox-error.js';
import { Postbox } from '../postbox.js';
import { connectionPasswords, describePostgresUrl, maskPasswords, redactUrl as redact } from '../sql/connection-secrets.js';
import type { Database } from '../sql/database.js';
import { openDatabase } from '../sql/open-database.js';
import { CliError } from './errors.js';

export interface ConnectionFlags {
  databaseUrl?: string;
}

type Env = Record<string, string | undefined>;

interface Target {
  url: string | undefined;
  dataDir: string;
  pool: PostboxEnvConfig['pool'];
  payloadLimitBytes: number;
}

export function databaseUrlOption(): Option {
  return new Option(
    '--database-url <url>',
    'PostgreSQL URL; defaults to $DATABASE_URL or $TIMESCALE_URI, else embedded PGlite at $POSTBOX_DATA_DIR (or .postbox-data)',
  );
}

function checkFlagUrl(url: string): string {
  if (!/^postgres(ql)?:\/\//.test(url) || !URL.canParse(url)) {
    throw new ConfigError(
      'POSTBOX_ERR_CONFIG',
      `--database-url must be a postgres:// or postgresql:// URL (got ${JSON.stringify(describePostgresUrl(url))}).`,
      { option: '--database-url' },
    );
  }
  return url;
}

function resolveTarget(flags: ConnectionFlags, env: Env): Target {
  // The flag wins, so an unusable DATABASE_URL in the environment must not stop it.
  const config = loadEnvConfig(flags.databaseUrl === undefined ? env : { ...env, DATABASE_URL: undefined, TIMESCALE_URI: undefined });
  return {
    url: flags.databaseUrl === undefined ? config.databaseUrl : checkFlagUrl(flags.databaseUrl),
    dataDir: config.dataDir,
    pool: config.pool,
    payloadLimitBytes: config.payloadLimitBytes,
  };
}

function reason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // node reports a refused connection to several addresses as an AggregateError with an empty message.
  const nested = error instanceof AggregateError ? error.errors.map((inner) => (inner as Error).message).join('; ') : '';
  return error.message || nested || String((error as { code?: unknown }).code ?? error.name);
}

/** Masks the URL's password wherever a driver message might repeat it, not only inside URLs. */
function scrub(text: string, url: string | undefined): string {
  return redact(maskPasswords(text, connectionPasswords(url)));
}

async function connect(target: Target): Promise<Database> {
  const where = target.url ? describePostgresUrl(target.url) : `embedded PGlite at ${target.dataDir}`;
  let db: Database | undefined;
  try {
    db = await openDatabase({ url: target.url, dataDir: target.dataDir, pool: target.pool });
    await db.query('select 1');
    return db;
  } catch (error) {
    await db?.close().catch(() => undefined);
    throw new CliError('POSTBOX_ERR_CONNECTION', `Cannot connect to ${where}: ${scrub(reason(error), target.url)}`, { cause: error });
  }
}

/** Opens the database the flags and environment name, runs fn, and closes it; for `migrate`, which must not check the schema first. */
export async function withDatabase<T>(flags: ConnectionFlags, env: Env, fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await connect(resolveTarget(flags, env));
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** Like withDatabase, through a Postbox that refuses an unmigrated server and migrates embedded PGlite. */
export async function withPostbox<T>(flags: ConnectionFlags, env: Env, fn: (postbox: Postbox) => Promise<T>): Promise<T> {
  const target = resolveTarget(flags, env);
  const db = await connect(target);
  try {
    const postbox = await Postbox.create({
      database: db,
      migrate: db.kind === 'pglite' ? 'auto' : 'check',
      payloadLimitBytes: target.payloadLimitBytes,
    });
    try {
      return await fn(postbox);
    } finally {
      await postbox.close();
    }
  } finally {
    await db.close();
  }
}
