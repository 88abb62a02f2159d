import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The PostgreSQL major version of the server the tests use, and of the binaries that dump and restore. */
export const postgresMajor = 15;
export const postgresBin = `/usr/lib/postgresql/${postgresMajor}/bin`;

const clusterPrefix = 'postbox_scratch_';

export interface ScratchCluster {
  name: string;
  port: number;
  /** A URL of a database on the cluster (trust authentication, user postgres). */
  urlFor(database: string): string;
  drop(): Promise<void>;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

interface ListedCluster {
  version: number;
  name: string;
  port: number;
}

async function listClusters(): Promise<ListedCluster[]> {
  const { stdout } = await run('pg_lsclusters', ['--no-header']);
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [version, name, port] = line.trim().split(/\s+/);
      return { version: Number(version), name: name ?? '', port: Number(port) };
    });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

/** Drops the scratch clusters of earlier test processes that died before they could drop their own. */
async function dropOrphans(clusters: readonly ListedCluster[]): Promise<void> {
  for (const cluster of clusters) {
    const owner = cluster.name.startsWith(clusterPrefix) ? Number(cluster.name.slice(clusterPrefix.length).split('_')[0]) : Number.NaN;
    if (Number.isSafeInteger(owner) && !processAlive(owner)) {
      await run('pg_dropcluster', ['--stop', String(cluster.version), cluster.name]);
    }
  }
}

/**
 * A freshly initialised PostgreSQL cluster of its own (Debian's pg_createcluster), started on a free
 * loopback port with trust authentication: a second server whose transaction ids start low. Needs
 * root, as the tests run. Drop it when done, also when a test fails.
 */
export async function createScratchCluster(firstPort: number): Promise<ScratchCluster> {
  if (!existsSync('/usr/bin/pg_createcluster') || !existsSync(`${postgresBin}/initdb`)) {
    throw new Error(
      `pg_createcluster or PostgreSQL ${postgresMajor}'s initdb is missing; install them with: apt-get install -y postgresql-common postgresql-${postgresMajor}`,
    );
  }
  const clusters = await listClusters();
  await dropOrphans(clusters);
  const taken = new Set(clusters.map((cluster) => cluster.port));
  let port = firstPort;
  while (taken.has(port) || !(await portIsFree(port))) {
    port += 1;
    if (port > firstPort + 100) throw new Error(`no free port from ${firstPort} to ${port} for a scratch cluster`);
  }
  const name = `${clusterPrefix}${process.pid}_${port}`;
  const drop = async () => {
    await run('pg_dropcluster', ['--stop', String(postgresMajor), name]).catch((error: { stderr?: string }) => {
      if (!/does not exist/.test(error.stderr ?? '')) throw error;
    });
  };
  try {
    await run('pg_createcluster', [
      String(postgresMajor),
      name,
      '--port',
      String(port),
      '--start',
      '--',
      '--auth-local=trust',
      '--auth-host=trust',
      '--no-sync',
    ]);
  } catch (error) {
    await drop().catch(() => undefined);
    throw error;
  }
  return {
    name,
    port,
    urlFor: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    drop,
  };
}
