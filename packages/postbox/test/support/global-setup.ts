import { migrate } from '../../src/schema/migrator.js';
import { postgresDatabase } from '../../src/sql/postgres-database.js';
import { templateName, urlFor, withAdmin } from './postgres.js';
import { ensureSystemPackages } from './system-packages.js';

/**
 * Installs the system packages the tests need (or fails at once naming the command that does), then
 * builds one migrated template database; each test file clones it into a database of its own.
 */
export default async function setup(): Promise<() => Promise<void>> {
  await ensureSystemPackages();
  await withAdmin(async (client) => {
    await client.query(`drop database if exists ${templateName} with (force)`);
    await client.query(`create database ${templateName}`);
  });
  const db = postgresDatabase(urlFor(templateName));
  try {
    await migrate(db);
  } finally {
    await db.close();
  }
  return async () => {
    await withAdmin(async (client) => {
      await client.query(`drop database if exists ${templateName} with (force)`);
    });
  };
}
