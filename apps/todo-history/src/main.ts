import { exitOnSignals, isPostboxError, redactUrl } from 'postbox';
import { loadConfig } from './config.js';
import { startSystem } from './system.js';

/**
 * `npm start`: migrations, the todo API and the page, the history consumer, partition
 * maintenance, health and metrics, in one process; SIGTERM or Ctrl-C shuts it down gracefully.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const system = await startSystem(config, { env: process.env });
  exitOnSignals(() => system.close(), { logger: system.logger });
  const url = await system.listen().catch(async (error: unknown) => {
    await system.close();
    throw error;
  });
  system.logger.info({ url, database: system.postbox.db.description }, 'todo-history is listening');
  console.log(`todo-history: ${url} (database: ${system.postbox.db.description}; Ctrl-C stops it)`);
}

main().catch((error: unknown) => {
  const code = isPostboxError(error) ? `${error.code}: ` : '';
  console.error(`todo-history: ${code}${redactUrl(error instanceof Error ? error.message : String(error))}`);
  process.exit(1);
});
