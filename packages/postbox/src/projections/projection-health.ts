import { defaults } from '../config/defaults.js';
import type { HealthCheck } from '../observability/health.js';
import { redactUrl } from '../sql/connection-secrets.js';
import type { Executor } from '../sql/database.js';
import { type ProjectionStatus, projectionStatuses } from './projection-status.js';

export interface ProjectionHealthOptions {
  /** A projection further behind than this is degraded. */
  maxLagEvents?: number;
  /** Only this projection. */
  name?: string;
}

export function projectionHealth(status: ProjectionStatus, maxLagEvents: number): HealthCheck {
  const name = `projection:${status.name}`;
  if (status.status === 'faulted') {
    return {
      name,
      status: 'unhealthy',
      detail: `faulted after ${status.failures} failures: ${redactUrl(status.lastError ?? 'unknown error')}`,
    };
  }
  if (status.status === 'stopped') return { name, status: 'degraded', detail: 'paused' };
  if (status.lagEvents > maxLagEvents) return { name, status: 'degraded', detail: `lag ${status.lagEvents} events` };
  if (status.rebuild)
    return { name, status: 'healthy', detail: `rebuilding v${status.rebuild.version}, ${status.rebuild.lagEvents} events to go` };
  return { name, status: 'healthy' };
}

/** One HealthCheck per projection: unhealthy when faulted, degraded when paused or further behind than maxLagEvents. */
export async function projectionHealthChecks(db: Executor, options: ProjectionHealthOptions = {}): Promise<HealthCheck[]> {
  const maxLagEvents = options.maxLagEvents ?? defaults.eventStore.projections.maxLagEvents;
  return (await projectionStatuses(db, options.name)).map((status) => projectionHealth(status, maxLagEvents));
}
