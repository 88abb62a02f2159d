import { defaults } from '../config/defaults.js';
import { type GroupStatus, groupStatuses } from '../consumers/status.js';
import { ValidationError } from '../errors/postbox-error.js';
import { postboxMigrations } from '../schema/migrations.js';
import { redactUrl } from '../sql/connection-secrets.js';
import type { Database } from '../sql/database.js';
import { autovacuumCheck } from './autovacuum-check.js';
import { deadLettersCheck } from './dead-letters-check.js';
import type { DoctorCheck, DoctorContext, DoctorFinding, DoctorResult, DoctorSettings } from './doctor-check.js';
import { longTransactionsCheck } from './long-transactions-check.js';
import { readPlanCheck } from './read-plan-check.js';
import { schemaCheck } from './schema-check.js';
import { stalledGroupsCheck } from './stalled-groups-check.js';
import { transactionIdsCheck } from './transaction-ids-check.js';
import { unownedPartitionsCheck } from './unowned-partitions-check.js';

export type { DoctorResult, DoctorSettings, DoctorVerdict } from './doctor-check.js';

export type DoctorOptions = Partial<DoctorSettings>;

/**
 * Every check, in the order of the report. The schema comes first: the checks that need it are
 * reported as not checked when it is not current.
 */
export const doctorChecks: readonly DoctorCheck[] = [
  schemaCheck,
  transactionIdsCheck,
  readPlanCheck,
  autovacuumCheck,
  longTransactionsCheck,
  stalledGroupsCheck,
  deadLettersCheck,
  unownedPartitionsCheck,
];

const integerSettings = new Set<keyof DoctorSettings>(['autovacuumMinRows', 'planGroups', 'batchSize']);

function resolveSettings(options: DoctorOptions): DoctorSettings {
  const settings: DoctorSettings = {
    longTransactionWarnSeconds: options.longTransactionWarnSeconds ?? defaults.doctor.longTransactionWarnSeconds,
    longTransactionFailSeconds: options.longTransactionFailSeconds ?? defaults.doctor.longTransactionFailSeconds,
    stalledAfterSeconds: options.stalledAfterSeconds ?? defaults.doctor.stalledAfterSeconds,
    autovacuumMinRows: options.autovacuumMinRows ?? defaults.doctor.autovacuumMinRows,
    planGroups: options.planGroups ?? defaults.doctor.planGroups,
    leaseTtlMs: options.leaseTtlMs ?? defaults.consumer.leaseTtlMs,
    batchSize: options.batchSize ?? defaults.consumer.batchSize,
  };
  for (const [name, value] of Object.entries(settings) as [keyof DoctorSettings, unknown][]) {
    const valid =
      typeof value === 'number' && Number.isFinite(value) && value >= 0 && (!integerSettings.has(name) || Number.isSafeInteger(value));
    if (!valid || (integerSettings.has(name) && value === 0)) {
      throw new ValidationError(
        'POSTBOX_ERR_BAD_OPTION',
        `${name} must be ${integerSettings.has(name) ? 'a positive integer' : 'a number of 0 or more'} (got ${JSON.stringify(value)}).`,
        { option: name },
      );
    }
  }
  if (settings.longTransactionFailSeconds < settings.longTransactionWarnSeconds) {
    throw new ValidationError(
      'POSTBOX_ERR_BAD_OPTION',
      `longTransactionFailSeconds (${settings.longTransactionFailSeconds}) must not be below longTransactionWarnSeconds (${settings.longTransactionWarnSeconds}).`,
      { option: 'longTransactionFailSeconds' },
    );
  }
  return settings;
}

async function runCheck(check: DoctorCheck, context: DoctorContext): Promise<DoctorFinding> {
  try {
    return await check.run(context);
  } catch (error) {
    return {
      verdict: 'fail',
      finding: `the check could not run: ${redactUrl(error instanceof Error ? error.message : String(error))}`,
      fix: 'run the doctor as a role that may read the postbox schema and the statistics views; the message says what was refused',
    };
  }
}

/**
 * Looks the database over: schema, transaction ids after a restore, the read path's plan, autovacuum, long transactions, stalled
 * groups, dead letters, partitions without an owner. Resolves to one result per check, in order;
 * a problem found is a result, never a rejection. Nothing is written.
 */
export async function runDoctor(db: Database, options: DoctorOptions = {}): Promise<DoctorResult[]> {
  const settings = resolveSettings(options);
  let groups: Promise<GroupStatus[]> | undefined;
  const context: DoctorContext = { db, settings, groups: () => (groups ??= groupStatuses(db)) };
  const results: DoctorResult[] = [];
  let schemaCurrent = true;
  for (const check of doctorChecks) {
    const finding: DoctorFinding =
      check.needsSchema && !schemaCurrent
        ? {
            verdict: 'warn',
            finding: 'not checked: the schema is not current',
            fix: `run \`${postboxMigrations.migrateCommand}\`, then the doctor again`,
          }
        : await runCheck(check, context);
    if (check === schemaCheck) schemaCurrent = finding.verdict === 'ok';
    results.push({ check: check.check, title: check.title, ...finding });
  }
  return results;
}

/** True when some check failed: `postbox doctor` then exits 1. Warnings alone leave it at 0. */
export function doctorFailed(results: readonly DoctorResult[]): boolean {
  return results.some((result) => result.verdict === 'fail');
}
