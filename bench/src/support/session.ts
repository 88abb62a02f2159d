import type pg from 'pg';
import type { CallerTransaction } from 'postbox';

/** One connection, from node-postgres or PGlite, as the hand-written baselines use it. */
export interface Session {
  /** The driver object itself, to hand to Postbox.enqueue as the caller's transaction. */
  readonly driver: CallerTransaction;
  query<R = any>(text: string, params?: unknown[]): Promise<R[]>;
  /** A statement prepared once per connection (a node-postgres named statement; PGlite runs it as it is). */
  prepared<R = any>(name: string, text: string, params: unknown[]): Promise<R[]>;
}

export function pgSession(client: pg.Client): Session {
  return {
    driver: client,
    query: async (text, params) => (await client.query(text, params)).rows,
    prepared: async (name, text, params) => (await client.query({ name, text, values: params })).rows,
  };
}

interface PgliteLike {
  query<R>(text: string, params?: any[]): Promise<{ rows: R[] }>;
}

export function pgliteSession(pglite: PgliteLike): Session {
  return {
    driver: pglite,
    query: async (text, params) => (await pglite.query<any>(text, params)).rows,
    prepared: async (_name, text, params) => (await pglite.query<any>(text, params)).rows,
  };
}
