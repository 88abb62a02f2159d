import { tracingRequested } from './telemetry/tracing-env.js';

/**
 * `npm start`. When OTEL_* asks for traces, OpenTelemetry starts first and the app is imported
 * after it, since its hooks only instrument node:http and pg if they load later; otherwise the SDK
 * is never loaded.
 */
async function main(): Promise<void> {
  const tracing = tracingRequested(process.env)
    ? await (await import('./telemetry/start-tracing.js')).startTracing(process.env)
    : undefined;
  const { runApp } = await import('./run-app.js');
  await runApp(process.env, tracing);
}

main().catch((error: unknown) => {
  console.error(`todo-history: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
