import type { FastifyInstance } from 'fastify';
import { defaults } from '../config/defaults.js';
import { loadEnvConfig } from '../config/env.js';
import { type HealthCheck, readiness } from '../observability/health.js';
import type { PostboxMetrics } from '../observability/metrics.js';
import type { Executor } from '../sql/database.js';
import { Fastify } from './fastify.js';

export interface OpsServerOptions {
  db: Executor;
  metrics: PostboxMetrics;
  host?: string;
  port?: number;
  maxLagMessages?: number;
  maxWatermarkDelaySeconds?: number;
  extraChecks?: () => Promise<HealthCheck[]>;
}

/** Adds /health/live, /health/ready and /metrics to a Fastify instance (the app's own, or a new one). */
export function registerOpsRoutes(app: FastifyInstance, options: OpsServerOptions): void {
  app.get('/health/live', async () => ({ status: 'healthy' }));
  app.get('/health/ready', async (_request, reply) => {
    const report = await readiness(options.db, {
      maxLagMessages: options.maxLagMessages ?? defaults.health.maxLagMessages,
      maxWatermarkDelaySeconds: options.maxWatermarkDelaySeconds,
      extraChecks: options.extraChecks,
    });
    // Degraded still serves traffic; only unhealthy takes the process out of rotation.
    return reply.code(report.status === 'unhealthy' ? 503 : 200).send(report);
  });
  app.get('/metrics', async (_request, reply) => {
    const body = await options.metrics.registry.metrics();
    return reply.header('content-type', options.metrics.registry.contentType).send(body);
  });
}

/** Starts the ops server when ENABLE_METRICS is true (METRICS_HOST, METRICS_PORT); otherwise undefined. */
export async function opsServerFromEnv(
  options: Omit<OpsServerOptions, 'host' | 'port'>,
  env: Record<string, string | undefined> = process.env,
): Promise<{ url: string; close(): Promise<void> } | undefined> {
  const { metrics } = loadEnvConfig(env);
  if (!metrics.enabled) return undefined;
  return startOpsServer({ ...options, host: metrics.host, port: metrics.port });
}

/** A small HTTP server for a process that has no web server of its own (ENABLE_METRICS). */
export async function startOpsServer(options: OpsServerOptions): Promise<{ url: string; close(): Promise<void> }> {
  const app = Fastify({ logger: false });
  registerOpsRoutes(app, options);
  const url = await app.listen({ host: options.host ?? defaults.health.host, port: options.port ?? defaults.health.port });
  return { url, close: () => app.close() };
}
