import type { GroupStatus } from '../consumers/status.js';
import type { Database } from '../sql/database.js';

/** ok: nothing to do. warn: worth a look, nothing is lost yet. fail: messages wait or the schema is wrong; act now. */
export type DoctorVerdict = 'ok' | 'warn' | 'fail';

/** What one check found. */
export interface DoctorFinding {
  verdict: DoctorVerdict;
  finding: string;
  /** For warn and fail: the command or setting that puts it right. */
  fix?: string;
}

/** One line of the doctor's report. */
export interface DoctorResult extends DoctorFinding {
  /** A stable name, for scripts: `schema`, `read-plan`, `autovacuum`... */
  check: string;
  /** What was checked, for people. */
  title: string;
}

/** The thresholds the checks judge by; each defaults to defaults.doctor (lease time: defaults.consumer). */
export interface DoctorSettings {
  longTransactionWarnSeconds: number;
  longTransactionFailSeconds: number;
  stalledAfterSeconds: number;
  autovacuumMinRows: number;
  planGroups: number;
  /** A partition left without an owner this long, while its group runs, is stranded. */
  leaseTtlMs: number;
  /** Rows per read when the read plan is checked, as consumers read them. */
  batchSize: number;
}

export interface DoctorContext {
  db: Database;
  settings: DoctorSettings;
  /** The consumer groups' status, read once for all the checks that need it. */
  groups(): Promise<GroupStatus[]>;
}

export interface DoctorCheck {
  check: string;
  title: string;
  /** Runs only on a current Postbox schema; otherwise it is reported as not checked. */
  needsSchema: boolean;
  run(context: DoctorContext): Promise<DoctorFinding>;
}
