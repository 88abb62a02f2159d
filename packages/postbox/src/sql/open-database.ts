import type { PostboxEnvConfig } from '../config/env.js';
import type { Database } from './database.js';
import { pgliteDatabase } from './pglite-database.js';
import { postgresDatabase } from './postgres-database.js';

export interface OpenDatabaseOptions {
  /** A PostgreSQL URL; without it Postbox uses embedded PGlite. */
  url?: string;
  /** PGlite data directory; `memory` keeps the database in memory. */
  dataDir?: string;
  pool?: Partial<PostboxEnvConfig['pool']>;
  onError?: (error: Error) => void;
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  if (options.url) return postgresDatabase(options.url, { ...options.pool, onError: options.onError });
  return pgliteDatabase(options.dataDir === 'memory' ? undefined : options.dataDir);
}
