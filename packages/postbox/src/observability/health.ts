import { defaults } from '../config/defaults.js';
import { groupStatuses } from '../consumers/status.js';
import { assertSchemaCurrent } from '../schema/migrator.js';
import { redactUrl } from '../sql/connection-secrets.js';
import type { Executor } from '../sql/database.js';

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

export interface HealthCheck {
  name: string;
  status: HealthStatus;
  detail?: string;
}

export interface ReadinessReport {
  status: HealthStatus;
  checks: HealthCheck[];
}

export interface ReadinessOptions {
  /** A group further behind than this many messages makes the report degraded. */
  maxLagMessages: number;
  /**
   * A partition of a group that some process runs, left without an owner for longer than this,
   * makes the report degraded: its messages wait for nobody. The consumers' lease time by default.
   */
  leaseTtlMs?: number;
  /** Extra checks of the application (a relay, a Kafka subscriber, projections). */
  extraChecks?: () => Promise<HealthCheck[]>;
}

const rank: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2 };

function worst(checks: HealthCheck[]): HealthStatus {
  return checks.reduce<HealthStatus>((acc, check) => (rank[check.status] > rank[acc] ? check.status : acc), 'healthy');
}

function describe(error: unknown): string {
  return redactUrl(error instanceof Error ? error.message : String(error));
}

/**
 * Readiness: the database answers, the schema is current, and no consumer group is failing or
 * further behind than the threshold (degraded). Messages never hold a connection password.
 */
export async function readiness(db: Executor, options: ReadinessOptions): Promise<ReadinessReport> {
  const checks: HealthCheck[] = [];
  try {
    await db.query('select 1');
    checks.push({ name: 'database', status: 'healthy' });
  } catch (error) {
    checks.push({ name: 'database', status: 'unhealthy', detail: describe(error) });
    return { status: 'unhealthy', checks };
  }
  try {
    await assertSchemaCurrent(db);
    checks.push({ name: 'schema', status: 'healthy' });
  } catch (error) {
    checks.push({ name: 'schema', status: 'unhealthy', detail: describe(error) });
    return { status: 'unhealthy', checks };
  }
  const leaseTtlMs = options.leaseTtlMs ?? defaults.consumer.leaseTtlMs;
  for (const group of await groupStatuses(db)) {
    const running = group.members.some((member) => member.live);
    const stranded = running ? group.partitions.filter((p) => p.owner === null && p.unownedSeconds * 1_000 > leaseTtlMs) : [];
    if (group.lastError) {
      checks.push({ name: `group:${group.group}`, status: 'degraded', detail: `failing: ${redactUrl(group.lastError)}` });
    } else if (stranded.length > 0) {
      const longest = Math.max(...stranded.map((p) => p.unownedSeconds));
      checks.push({
        name: `group:${group.group}`,
        status: 'degraded',
        detail: `partition${stranded.length === 1 ? '' : 's'} ${stranded.map((p) => p.partition).join(', ')} without an owner for ${Math.round(longest)}s, longer than a lease`,
      });
    } else if (group.lagMessages > options.maxLagMessages) {
      checks.push({ name: `group:${group.group}`, status: 'degraded', detail: `lag ${group.lagMessages} messages` });
    } else {
      checks.push({ name: `group:${group.group}`, status: 'healthy' });
    }
  }
  if (options.extraChecks) {
    try {
      checks.push(...(await options.extraChecks()));
    } catch (error) {
      checks.push({ name: 'application', status: 'unhealthy', detail: describe(error) });
    }
  }
  return { status: worst(checks), checks };
}
