import { migrate, migrationsAsSql, openDatabase, postboxMigrations, redactUrl } from 'postbox';
import { loadConfig } from '../config.js';
import { todoHistoryMigrations } from './migration-set.js';

/**
 * `npm run migrate --workspace todo-history` applies Postbox's migrations and the app's to the
 * database of DATABASE_URL / TIMESCALE_URI (or the embedded PGlite); `-- --print` prints them as SQL.
 */
async function main(): Promise<void> {
  if (process.argv.includes('--print')) {
    process.stdout.write(migrationsAsSql(postboxMigrations));
    process.stdout.write(migrationsAsSql(todoHistoryMigrations));
    return;
  }
  const config = loadConfig();
  const db = await openDatabase({ url: config.postbox.databaseUrl, dataDir: config.dataDir, pool: config.postbox.pool });
  try {
    for (const set of [postboxMigrations, todoHistoryMigrations]) {
      const result = await migrate(db, { set });
      const applied = result.applied.map((m) => `${m.version}_${m.name}`).join(', ') || 'nothing to apply';
      console.log(`${set.name}: version ${result.version} on ${db.description} (${applied})`);
    }
  } finally {
    await db.close();
  }
}

main().catch((error: unknown) => {
  const code = (error as { code?: string }).code;
  console.error(`migrate: ${code ? `${code}: ` : ''}${redactUrl(error instanceof Error ? error.message : String(error))}`);
  process.exit(1);
});
