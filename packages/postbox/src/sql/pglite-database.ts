import { mkdirSync } from 'node:fs';
import type { PGlite, Results } from '@electric-sql/pglite';
import type { Database, Executor, QueryResult } from './database.js';
import { checkIdentifier } from './identifier.js';

function normalise<R>(result: Results<R>): QueryResult<R> {
  return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
}

/**
 * Embedded PostgreSQL (PGlite). `dataDir` persists to disk; omit it for an in-memory database.
 * Pass `existing` to run on a PGlite instance the application already has (it is not closed by
 * close()). PGlite is one connection, so transactions run one at a time. PGlite itself is loaded
 * here, on first use, so that a process that only talks to a server never loads it.
 */
export async function pgliteDatabase(dataDir?: string, existing?: PGlite): Promise<Database & { pglite: PGlite }> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const pglite = existing ?? (await (await import('@electric-sql/pglite')).PGlite.create(dataDir));
  const owned = !existing;
  return {
    kind: 'pglite',
    description: dataDir ? `pglite ${dataDir}` : 'pglite (in memory)',
    pglite,
    async query<R>(text: string, params: readonly unknown[] = []) {
      return normalise(await pglite.query<R>(text, params as unknown[]));
    },
    async exec(script: string) {
      await pglite.exec(script);
    },
    async queryNamed<R>(_name: string, text: string, params: readonly unknown[]) {
      return normalise(await pglite.query<R>(text, params as unknown[]));
    },
    // PGlite runs every statement unnamed.
    preparesNamedStatements: false,
    transaction<T>(fn: (tx: Executor) => Promise<T>) {
      return pglite.transaction((tx) =>
        fn({
          query: async <R>(text: string, params: readonly unknown[] = []) => normalise(await tx.query<R>(text, params as unknown[])),
          exec: async (script: string) => {
            await tx.exec(script);
          },
        }),
      );
    },
    async withNotices<T>(fn: (tx: Executor, notices: readonly string[]) => Promise<T>) {
      const notices: string[] = [];
      const onNotice = (notice: { message?: string }) => notices.push(notice.message ?? '');
      return pglite.transaction(async (tx) => {
        try {
          return await fn(
            {
              query: async <R>(text: string, params: readonly unknown[] = []) =>
                normalise(await tx.query<R>(text, params as unknown[], { onNotice })),
              exec: async (script: string) => {
                await tx.exec(script, { onNotice });
              },
            },
            notices,
          );
        } finally {
          await tx.rollback();
        }
      });
    },
    async listen(channel, onPayload) {
      // PGlite puts the channel into LISTEN as written, so it must never carry SQL.
      const unlisten = await pglite.listen(checkIdentifier(channel, 'channel'), onPayload);
      return async () => {
        if (!pglite.closed) await unlisten();
      };
    },
    async close() {
      if (owned && !pglite.closed) await pglite.close();
    },
  };
}
