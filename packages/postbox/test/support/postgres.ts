import { randomUUID } from 'node:crypto';
import pg from 'pg';

/** The server the tests use; POSTBOX_TEST_DATABASE_URL overrides it. */
export const serverUrl = process.env.POSTBOX_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** One run's databases share a prefix, so runs on the same server never touch each other's. */
const runId = process.env.POSTBOX_TEST_RUN_ID ?? String(process.pid);
export const templateName = `postbox_test_${runId}_template`;

export function urlFor(database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

export async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/**
 * A fresh database of its own for one test file: migrated (cloned from the template) or empty.
 */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const name = `postbox_test_${runId}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  await withAdmin(async (client) => {
    const template = options.migrated === false ? 'template0' : templateName;
    // CREATE DATABASE ... TEMPLATE fails while another session is connected to the template, so retry briefly.
    for (let attempt = 0; ; attempt++) {
      try {
        await client.query(`create database ${name} template ${template}`);
        return;
      } catch (error) {
        if (attempt > 20 || (error as { code?: string }).code !== '55006') throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  });
  return {
    url: urlFor(name),
    name,
    drop: () =>
      withAdmin(async (client) => {
        await client.query(`drop database if exists ${name} with (force)`);
      }),
  };
}
