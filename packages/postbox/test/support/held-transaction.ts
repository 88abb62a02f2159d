import { randomUUID } from 'node:crypto';
import pg from 'pg';

/** A session of its own, named by its application_name, that keeps a transaction open until end(). */
export interface HeldTransaction {
  pid: number;
  applicationName: string;
  end(): Promise<void>;
}

/** Opens a session on url, begins a transaction, runs the statements in it, and leaves it `idle in transaction`. */
export async function holdTransaction(url: string, statements: readonly string[]): Promise<HeldTransaction> {
  const applicationName = `holder-${randomUUID().slice(0, 8)}`;
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  await client.connect();
  const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
  await client.query('begin');
  for (const statement of statements) await client.query(statement);
  return {
    pid: Number(rows[0]?.pid),
    applicationName,
    async end() {
      await client.query('rollback').catch(() => undefined);
      await client.end();
    },
  };
}
