import pg from 'pg';

/** The server every benchmark uses; POSTBOX_BENCH_DATABASE_URL overrides it. */
export const serverUrl = process.env.POSTBOX_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A fresh, empty database `postbox_bench_<name>`, replacing one a crashed run left behind. */
export async function createDatabase(name: string): Promise<BenchDatabase> {
  const database = `postbox_bench_${name}`;
  await admin(`drop database if exists ${database} with (force)`);
  await admin(`create database ${database}`);
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return { name: database, url: url.toString(), drop: () => admin(`drop database if exists ${database} with (force)`) };
}

/** A connected client on url; the caller ends it. */
export async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}
