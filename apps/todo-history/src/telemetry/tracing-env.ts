import { appDefaults } from '../defaults.js';
import type { Env } from '../env.js';

/**
 * The OTEL_* variables as the OpenTelemetry SDK reads them. This module imports nothing that the
 * SDK instruments, so that the entry point can decide on tracing before the app's modules load.
 */

function nonBlank(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

/** A comma-separated OTEL_* list, trimmed, without empty entries. */
export function otelList(value: string): string[] {
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

/**
 * True when OTEL_* asks for traces: OTEL_EXPORTER_OTLP_ENDPOINT (or its traces-only variant) or
 * OTEL_TRACES_EXPORTER is set, OTEL_TRACES_EXPORTER is not `none`, and OTEL_SDK_DISABLED is not true.
 */
export function tracingRequested(env: Env): boolean {
  if (nonBlank(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return false;
  const exporters = nonBlank(env, 'OTEL_TRACES_EXPORTER');
  if (exporters !== undefined) return otelList(exporters).join(',') !== 'none';
  return nonBlank(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined || nonBlank(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined;
}

/** The service.name that OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES gives; the SDK reads them itself. */
function otelServiceName(env: Env): string | undefined {
  const named = nonBlank(env, 'OTEL_SERVICE_NAME');
  if (named) return named;
  const attribute = otelList(env.OTEL_RESOURCE_ATTRIBUTES ?? '').find((pair) => pair.startsWith('service.name='));
  const value = attribute?.slice('service.name='.length).trim();
  if (!value) return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** The name the spans' resource carries: OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OUTBOX_SERVICE_NAME, or the app's. */
export function tracingServiceName(env: Env): { name: string; fromOtel: boolean } {
  const otel = otelServiceName(env);
  if (otel) return { name: otel, fromOtel: true };
  return { name: nonBlank(env, 'OUTBOX_SERVICE_NAME') ?? appDefaults.tracing.serviceName, fromOtel: false };
}
