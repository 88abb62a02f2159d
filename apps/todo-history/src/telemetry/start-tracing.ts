import { register } from 'node:module';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { createAddHookMessageChannel } from 'import-in-the-middle';
import { appDefaults } from '../defaults.js';
import type { Env } from '../env.js';
import { nameHttpSpansByRoute } from './http-route-names.js';
import { tracingServiceName } from './tracing-env.js';

export interface Tracing {
  /** Exports the spans still buffered and stops the SDK; false if that did not finish within the timeout. */
  shutdown(): Promise<boolean>;
}

/**
 * Starts the OpenTelemetry Node SDK, which reads the OTEL_* variables itself (exporter, endpoint,
 * protocol, sampler, batch delays...), with spans for incoming HTTP requests and for pg queries.
 * Call it before the app's modules are imported: the hooks that instrument node:http and pg (ES
 * modules included, through import-in-the-middle) only see modules loaded after them.
 */
export async function startTracing(env: Env): Promise<Tracing> {
  // The loader intercepts only the modules the instrumentations ask for, not every import of the app.
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);
  const service = tracingServiceName(env);
  const sdk = new NodeSDK({
    serviceName: service.fromOtel ? undefined : service.name,
    instrumentations: [
      new HttpInstrumentation(),
      // A poll of the consumers or a lease renewal outside any request or message span is no trace of its own.
      new PgInstrumentation({ requireParentSpan: true }),
    ],
  });
  sdk.start();
  await waitForAllMessagesAcknowledged();
  nameHttpSpansByRoute();
  return { shutdown: () => shutdownWithin(sdk, appDefaults.tracing.shutdownTimeoutMs) };
}

async function shutdownWithin(sdk: NodeSDK, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([sdk.shutdown().then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
