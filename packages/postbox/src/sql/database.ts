export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/** Anything that runs parameterised SQL: our pool, a caller's `pg` client inside BEGIN, a PGlite transaction. */
export interface Executor {
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
  /** Whether query() prepares each statement once per connection, so a long statement is not planned on every call. */
  readonly preparesStatements?: boolean;
}

/**
 * The shape of a caller's open transaction: a `pg` Client/PoolClient after BEGIN, a PGlite
 * `Transaction`, or an adapter over an ORM's raw-SQL call.
 */
export interface CallerTransaction {
  query(text: string, params?: any[]): Promise<{ rows: any[]; rowCount?: number | null; affectedRows?: number }>;
}

export interface Database extends Executor {
  readonly kind: 'postgres' | 'pglite';
  /** Safe to log: never holds a password. */
  readonly description: string;
  /** Runs a statement prepared once per connection; the hot paths use it. */
  queryNamed<R = Record<string, unknown>>(name: string, text: string, params: readonly unknown[]): Promise<QueryResult<R>>;
  /** Whether queryNamed really prepares: where it cannot, the statement is planned on every call. */
  readonly preparesNamedStatements: boolean;
  transaction<T>(fn: (tx: Executor) => Promise<T>): Promise<T>;
  /**
   * Runs fn in a transaction that is always rolled back, on a connection that is not reused, and
   * collects the notices the server sends meanwhile (RAISE NOTICE, auto_explain's plans) into
   * `notices` as they arrive. For diagnosis: fn may load libraries and change settings freely.
   */
  withNotices?<T>(fn: (tx: Executor, notices: readonly string[]) => Promise<T>): Promise<T>;
  /** Subscribes to a NOTIFY channel; `onReconnect` runs after a lost listener connection comes back. */
  listen(channel: string, onPayload: (payload: string) => void, onReconnect?: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** Wraps a caller's transaction so the library can run its statements on it. */
export function asExecutor(tx: CallerTransaction | Executor): Executor {
  return {
    async query<R>(text: string, params: readonly unknown[] = []) {
      const result = await tx.query(text, params as unknown[]);
      const raw = result as { rows: R[]; rowCount?: number | null; affectedRows?: number };
      return { rows: raw.rows, rowCount: raw.rowCount ?? raw.affectedRows ?? raw.rows.length };
    },
    async exec(script: string) {
      await tx.query(script);
    },
  };
}
