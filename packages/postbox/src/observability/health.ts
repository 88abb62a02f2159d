import { defaults } from '../config/defaults.js';
import { groupStatuses, strandedPartitions } from '../consumers/status.js';
import { checkTransactionIds } from '../log/transaction-ids.js';
import { TransactionIdsBehindError } from '../log/transaction-ids-behind-error.js';
import { describeHolder, holdersWorthShowing, watermarkDelayOf, watermarkHolders } from '../log/watermark.js';
import { assertSchemaCurrent } from '../schema/migrator.js';
import { redactUrl } from '../sql/connection-secrets.js';
import type { Executor } from '../sql/database.js';
import { overdue } from '../time/time-status.js';

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
  /**
   * An open writing transaction older than this many seconds, in any database of the server, makes
   * the report degraded: readers of the log wait for it. defaults.health.maxWatermarkDelaySeconds by default.
   */
  maxWatermarkDelaySeconds?: number;
  /**
   * A scheduled message or schedule tick overdue by more than this many seconds makes the report
   * degraded: no process moves them into the log. defaults.health.maxScheduledOverdueSeconds by default.
   */
  maxScheduledOverdueSeconds?: number;
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

/** Degraded while some open writing transaction holds readers back longer than maxSeconds; names who holds them. */
async function watermarkCheck(db: Executor, maxSeconds: number): Promise<HealthCheck> {
  const holders = await watermarkHolders(db);
  const delay = watermarkDelayOf(holders);
  if (delay <= maxSeconds) return { name: 'watermark', status: 'healthy' };
  return {
    name: 'watermark',
    status: 'degraded',
    detail: `readers held back ${Math.round(delay)}s (over ${maxSeconds}s) by: ${holdersWorthShowing(holders, maxSeconds).map(describeHolder).join('; ')}`,
  };
}

/** Degraded while scheduled messages or schedule ticks wait past their time longer than maxSeconds: nobody keeps time. */
async function timekeeperCheck(db: Executor, maxSeconds: number): Promise<HealthCheck> {
  const status = await overdue(db);
  if (status.overdueSeconds <= maxSeconds) return { name: 'timekeeper', status: 'healthy' };
  const who = status.timekeeper ? `the timekeeper (${status.timekeeper.owner}) is not keeping up` : 'no process runs the timekeeper';
  return {
    name: 'timekeeper',
    status: 'degraded',
    detail: `scheduled messages or schedule ticks overdue by ${Math.round(status.overdueSeconds)}s (over ${maxSeconds}s): ${who}`,
  };
}

/**
 * Readiness: the database answers, the schema is current, no consumer group is failing or further
 * behind than the threshold, no open transaction holds readers back too long, and nothing scheduled
 * waits long past its time (degraded). Messages never hold a connection password.
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
  const ids = await checkTransactionIds(db);
  if (ids.status === 'behind') {
    // Every reader refuses to start until the recovery command has run: nothing here is ready.
    const detail = new TransactionIdsBehindError(ids.nextTransactionId, ids.highestStored).message;
    checks.push({ name: 'transaction-ids', status: 'unhealthy', detail });
    return { status: 'unhealthy', checks };
  }
  const leaseTtlMs = options.leaseTtlMs ?? defaults.consumer.leaseTtlMs;
  for (const group of await groupStatuses(db)) {
    const stranded = strandedPartitions(group, leaseTtlMs);
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
  checks.push(await watermarkCheck(db, options.maxWatermarkDelaySeconds ?? defaults.health.maxWatermarkDelaySeconds));
  checks.push(await timekeeperCheck(db, options.maxScheduledOverdueSeconds ?? defaults.health.maxScheduledOverdueSeconds));
  if (options.extraChecks) {
    try {
      checks.push(...(await options.extraChecks()));
    } catch (error) {
      checks.push({ name: 'application', status: 'unhealthy', detail: describe(error) });
    }
  }
  return { status: worst(checks), checks };
}
