import { defaults, exitOnSignals, isPostboxError, type Logger, redactUrl } from 'postbox';
import { type Env, loadConfig, type TracingConfig } from './config.js';
import { appDefaults } from './defaults.js';
import { startSystem } from './system.js';
import type { Tracing } from './telemetry/start-tracing.js';

/**
 * Migrations, the todo API and the page, the history consumer, partition maintenance, health and
 * metrics, in one process; SIGTERM or Ctrl-C shuts it down gracefully, then flushes the spans.
 */
export async function runApp(env: Env, tracing: Tracing | undefined): Promise<void> {
  try {
    const config = loadConfig(env);
    if (config.tracing) console.log(`todo-history: tracing: ${describeTracing(config.tracing)}`);
    const system = await startSystem(config, { env });
    const hardLimitMs = defaults.shutdownHardLimitMs + (tracing ? appDefaults.tracing.shutdownTimeoutMs : 0);
    exitOnSignals(
      async () => {
        const closed = await system.close();
        await stopTracing(tracing, system.logger);
        return closed;
      },
      { logger: system.logger, hardLimitMs },
    );
    const url = await system.listen().catch(async (error: unknown) => {
      await system.close();
      throw error;
    });
    system.logger.info({ url, database: system.postbox.db.description }, 'todo-history is listening');
    console.log(`todo-history: ${url} (database: ${system.postbox.db.description}; Ctrl-C stops it)`);
  } catch (error) {
    await stopTracing(tracing);
    const code = isPostboxError(error) ? `${error.code}: ` : '';
    console.error(`todo-history: ${code}${redactUrl(error instanceof Error ? error.message : String(error))}`);
    process.exit(1);
  }
}

/** `otlp (http/protobuf) to http://localhost:4318/v1/traces as todo-history`: where the spans go. */
function describeTracing(tracing: TracingConfig): string {
  const exporters = tracing.exporters.map((name) =>
    name === 'otlp' ? `otlp (${tracing.protocol}) to ${redactUrl(tracing.endpoint)}` : name,
  );
  return `${exporters.join(', ')} as ${tracing.serviceName}`;
}

async function stopTracing(tracing: Tracing | undefined, logger?: Logger): Promise<void> {
  if (!tracing || (await tracing.shutdown())) return;
  const message = `the last spans were not exported within ${appDefaults.tracing.shutdownTimeoutMs} ms`;
  if (logger) logger.warn(message);
  else console.error(`todo-history: ${message}`);
}
