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

/**
 * Waits until no client but this scenario's is connected to the server, and throws when others
 * stay: a restart would break the work of whoever shares the server.
 */
export async function waitUntilServerIsOurs(serverUrl: string, ownDatabase: string, timeoutMs: number): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const { rows } = await client.query<{ datname: string; connections: number }>(
        `select datname, count(*)::int as connections from pg_stat_activity
         where backend_type = 'client backend' and pid <> pg_backend_pid() and datname is distinct from $1
         group by datname order by datname`,
        [ownDatabase],
      );
      if (rows.length === 0) return;
      if (performance.now() > deadline) {
        const others = rows.map((row) => `${row.datname ?? '(none)'}: ${row.connections}`).join(', ');
        throw new Error(
          `Refusing to restart a PostgreSQL server that other clients use (${others}). Run the chaos suite alone, or point CHAOS_DATABASE_URL at a cluster of its own.`,
        );
      }
      await delay(500);
    }
  } finally {
    await client.end();
  }
}
