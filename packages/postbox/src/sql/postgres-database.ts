import pg from 'pg';
import { defaults } from '../config/defaults.js';
import { describePostgresUrl } from './connection-secrets.js';
import type { Database, Executor, QueryResult } from './database.js';
import { checkIdentifier } from './identifier.js';

export interface PostgresOptions {
  max?: number;
  idleTimeoutMs?: number;
  maxLifetimeMs?: number;
  connectionTimeoutMs?: number;
  onError?: (error: Error) => void;
}

function normalise<R>(result: pg.QueryResult): QueryResult<R> {
  return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
}

/** Runs fn inside BEGIN/COMMIT; a failed ROLLBACK marks the connection as broken. */
async function inTransaction<T>(client: pg.PoolClient, fn: (tx: Executor) => Promise<T>): Promise<T> {
  const tx: Executor = {
    query: async (text, params) => normalise(await client.query(text, params as unknown[])),
    exec: async (script) => {
      await client.query(script);
    },
  };
  await client.query('begin');
  try {
    const value = await fn(tx);
    await client.query('commit');
    return value;
  } catch (error) {
    try {
      await client.query('rollback');
    } catch {
      throw new BrokenConnection(error);
    }
    throw error;
  }
}

class BrokenConnection extends Error {
  constructor(readonly original: unknown) {
    super('connection broken');
  }
}

/** A reconnecting LISTEN connection shared by every subscriber of one database. */
class Listener {
  private client: pg.Client | undefined;
  private readonly handlers = new Map<string, Set<(payload: string) => void>>();
  private readonly reconnectHandlers = new Set<() => void>();
  private connecting: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly onError: (error: Error) => void,
  ) {}

  async subscribe(channel: string, onPayload: (payload: string) => void, onReconnect?: () => void) {
    let set = this.handlers.get(channel);
    const isNew = !set;
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
    }
    set.add(onPayload);
    if (onReconnect) this.reconnectHandlers.add(onReconnect);
    await this.ensureConnected();
    if (isNew && this.client) await this.client.query(`listen ${pg.escapeIdentifier(channel)}`);
    return async () => {
      set.delete(onPayload);
      if (onReconnect) this.reconnectHandlers.delete(onReconnect);
      if (set.size === 0) {
        this.handlers.delete(channel);
        await this.client?.query(`unlisten ${pg.escapeIdentifier(channel)}`).catch(() => undefined);
      }
    };
  }

  private ensureConnected(): Promise<void> {
    if (this.client) return Promise.resolve();
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connect(): Promise<void> {
    const client = new pg.Client(this.config);
    client.on('notification', (message) => {
      for (const handler of this.handlers.get(message.channel) ?? []) handler(message.payload ?? '');
    });
    client.on('error', (error) => {
      this.onError(error);
      this.dropAndReconnect(client);
    });
    client.on('end', () => this.dropAndReconnect(client));
    await client.connect();
    for (const channel of this.handlers.keys()) await client.query(`listen ${pg.escapeIdentifier(channel)}`);
    this.client = client;
  }

  private dropAndReconnect(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.end().catch(() => undefined);
    if (this.closed) return;
    const retry = (delayMs: number) => {
      setTimeout(() => {
        if (this.closed) return;
        this.ensureConnected().then(
          () => {
            for (const handler of this.reconnectHandlers) handler();
          },
          (error: Error) => {
            this.onError(error);
            retry(Math.min(delayMs * 2, 10_000));
          },
        );
      }, delayMs).unref();
    };
    retry(100);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}

/** A node-postgres pool, with a separate reconnecting connection for LISTEN. */
export function postgresDatabase(url: string, options: PostgresOptions = {}): Database & { pool: pg.Pool } {
  const onError = options.onError ?? (() => undefined);
  const clientConfig: pg.ClientConfig = {
    connectionString: url,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? defaults.pool.connectionTimeoutMs,
  };
  const pool = new pg.Pool({
    ...clientConfig,
    max: options.max ?? defaults.pool.max,
    idleTimeoutMillis: options.idleTimeoutMs ?? defaults.pool.idleTimeoutMs,
    maxLifetimeSeconds: Math.ceil((options.maxLifetimeMs ?? defaults.pool.maxLifetimeMs) / 1000),
  });
  // An idle client that loses its server must not crash the process; the pool replaces it.
  pool.on('error', onError);
  const listener = new Listener(clientConfig, onError);
  return {
    kind: 'postgres',
    description: `postgres ${describePostgresUrl(url)}`,
    pool,
    async query<R>(text: string, params: readonly unknown[] = []) {
      return normalise<R>(await pool.query(text, params as unknown[]));
    },
    async exec(script: string) {
      await pool.query(script);
    },
    async queryNamed<R>(name: string, text: string, params: readonly unknown[]) {
      return normalise<R>(await pool.query({ name, text, values: params as unknown[] }));
    },
    preparesNamedStatements: true,
    async transaction<T>(fn: (tx: Executor) => Promise<T>) {
      const client = await pool.connect();
      // The pool listens for errors on idle clients only. A checked-out client whose server goes away
      // (a restart, a terminated backend) emits 'error', which would end the process unheard; the
      // statement in flight rejects on its own, and the connection is discarded below.
      let lost: Error | undefined;
      const onLost = (error: Error) => {
        lost ??= error;
        onError(error);
      };
      client.on('error', onLost);
      try {
        const value = await inTransaction(client, fn);
        client.off('error', onLost);
        client.release(lost);
        return value;
      } catch (error) {
        client.off('error', onLost);
        // A connection that could not even roll back is discarded rather than reused.
        const broken = error instanceof BrokenConnection;
        client.release(broken || lost);
        throw broken ? error.original : error;
      }
    },
    async withNotices<T>(fn: (tx: Executor, notices: readonly string[]) => Promise<T>) {
      const client = await pool.connect();
      const notices: string[] = [];
      const onNotice = (notice: { message?: string }) => notices.push(notice.message ?? '');
      client.on('notice', onNotice);
      // Errors of a checked-out client would otherwise go unheard; it is discarded below anyway.
      client.on('error', onError);
      try {
        await client.query('begin');
        return await fn(
          {
            query: async (text, params) => normalise(await client.query(text, params as unknown[])),
            exec: async (script) => {
              await client.query(script);
            },
          },
          notices,
        );
      } finally {
        await client.query('rollback').catch(() => undefined);
        client.off('notice', onNotice);
        client.off('error', onError);
        // Whatever fn loaded or set stays with this session: it never goes back to the pool.
        client.release(true);
      }
    },
    listen: async (channel, onPayload, onReconnect) => listener.subscribe(checkIdentifier(channel, 'channel'), onPayload, onReconnect),
    async close() {
      await listener.close();
      await pool.end();
    },
  };
}
