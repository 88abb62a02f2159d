import pg from 'pg';

export const defaultServerUrl = 'postgres://postgres@127.0.0.1:5432/postgres';

/** The server to run against: CHAOS_DATABASE_URL's server, or the local one. */
export function serverUrl(): string {
  return process.env.CHAOS_DATABASE_URL ?? defaultServerUrl;
}

export function databaseUrl(server: string, name: string): string {
  const url = new URL(server);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Runs one statement on the server's maintenance database, retrying while the server restarts. */
export async function adminQuery(server: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: server });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Creates an empty database with a name that is safe to quote as it is (lowercase letters, digits, _). */
export async function createDatabase(server: string, name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`Not a plain database name: ${name}`);
  await adminQuery(server, `drop database if exists "${name}" with (force)`);
  await adminQuery(server, `create database "${name}"`);
  return databaseUrl(server, name);
}

export async function dropDatabase(server: string, name: string): Promise<void> {
  await adminQuery(server, `drop database if exists "${name}" with (force)`);
}
