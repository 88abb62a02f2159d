import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { delay } from './wait.js';

const run = promisify(execFile);

/** A Debian PostgreSQL cluster, as `pg_lsclusters` lists it. */
export interface PostgresCluster {
  version: string;
  name: string;
  port: number;
}

export type ShutdownMode = 'fast' | 'immediate';

function portOf(serverUrl: string): number {
  const url = new URL(serverUrl);
  return url.port === '' ? 5432 : Number(url.port);
}

/** The local cluster that listens on the server URL's port. */
export async function clusterServing(serverUrl: string): Promise<PostgresCluster> {
  const host = new URL(serverUrl).hostname;
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) {
    throw new Error(`The server at ${host} is not on this machine: only a local cluster can be restarted`);
  }
  const port = portOf(serverUrl);
  const { stdout } = await run('pg_lsclusters', ['--no-header']);
  for (const line of stdout.split('\n')) {
    const [version, name, listed] = line.trim().split(/\s+/);
    if (version && name && Number(listed) === port) return { version, name, port };
  }
  throw new Error(`No cluster in pg_lsclusters listens on port ${port}`);
}

async function control(cluster: PostgresCluster, action: 'start' | 'stop' | 'restart', mode?: ShutdownMode): Promise<void> {
  const args = ['--skip-systemctl-redirect', cluster.version, cluster.name, action, ...(mode ? ['--mode', mode] : [])];
  await run('pg_ctlcluster', args);
}

export const stopCluster = (cluster: PostgresCluster, mode: ShutdownMode) => control(cluster, 'stop', mode);
export const startCluster = (cluster: PostgresCluster) => control(cluster, 'start');
export const restartCluster = (cluster: PostgresCluster, mode: ShutdownMode) => control(cluster, 'restart', mode);

/** Resolves once the server answers a query, with its clock at that moment; throws when it has not within timeoutMs. */
export async function waitUntilAccepting(serverUrl: string, timeoutMs: number): Promise<Date> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 1_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const { rows } = await client.query<{ now: Date }>('select clock_timestamp() as now');
      return rows[0]?.now as Date;
    } catch (error) {
      if (performance.now() > deadline) throw new Error(`The server did not accept connections within ${timeoutMs} ms: ${error}`);
      await delay(50);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

interface ServerActivity {
  /** Client connections to other databases than the scenario's, by database. */
  others: { datname: string | null; connections: number }[];
  /** Transactions ever committed or rolled back in those databases (the maintenance database aside). */
  transactions: string;
}

async function otherActivity(client: pg.Client, ownDatabase: string): Promise<ServerActivity> {
  const others = await client.query<{ datname: string | null; connections: number }>(
    `select datname, count(*)::int as connections from pg_stat_activity
     where backend_type = 'client backend' and pid <> pg_backend_pid() and datname is distinct from $1
     group by datname order by datname`,
    [ownDatabase],
  );
  const transactions = await client.query<{ total: string }>(
    `select coalesce(sum(xact_commit + xact_rollback), 0)::text as total from pg_stat_database
     where datname is distinct from $1 and datname is distinct from current_database()`,
    [ownDatabase],
  );
  return { others: others.rows, transactions: transactions.rows[0]?.total ?? '0' };
}

/**
 * Waits until the server is quiet but for this scenario: no client connected to another database,
 * and no transaction in one during a second (short-lived connections come and go between looks).
 * Throws when that does not happen within timeoutMs: a restart would break whoever shares the server.
 */
export async function waitUntilServerIsOurs(serverUrl: string, ownDatabase: string, timeoutMs: number): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const before = await otherActivity(client, ownDatabase);
      let busy = before.others.map((row) => `${row.datname ?? '(none)'}: ${row.connections} connected`).join(', ');
      if (before.others.length === 0) {
        await delay(1_000);
        const after = await otherActivity(client, ownDatabase);
        if (after.others.length === 0 && after.transactions === before.transactions) return;
        busy = 'transactions in other databases';
      }
      if (performance.now() > deadline) {
        throw new Error(
          `Refusing to restart a PostgreSQL server that other clients use (${busy}). Run the chaos suite alone, or point CHAOS_DATABASE_URL at a cluster of its own.`,
        );
      }
      await delay(500);
    }
  } finally {
    await client.end();
  }
}
