import { type ReadOptions, readAfter } from '../log/read.js';
import type { Database, Executor } from '../sql/database.js';
import { withSavepoint } from '../sql/savepoint.js';
import { plural } from '../text/plural.js';

/** A read as a consumer makes it, named for the report. */
export interface ProbeRead {
  label: string;
  options: ReadOptions;
}

/** One node of a plan as auto_explain prints it in JSON. */
interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Schema?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** What running the reads showed: the plans' faults, or, where plans cannot be seen, the scan counters. */
export type ReadPlanReport =
  | { seen: 'plans'; reads: number; problems: string[]; indexes: string[] }
  | { seen: 'counters'; reason: string; reads: number; sequentialScans: number; indexScans: number; problems: string[] };

/**
 * PostgreSQL plans a statement of a function for its parameters until it settles on a generic
 * plan after a few calls; a consumer runs its read thousands of times, so both kinds are checked.
 */
const planModes = [
  { mode: 'force_custom_plan', label: 'custom plan' },
  { mode: 'force_generic_plan', label: 'generic plan' },
] as const;

const explainSettings: readonly [string, string][] = [
  ['auto_explain.log_format', 'json'],
  ['auto_explain.log_nested_statements', 'on'],
  ['auto_explain.log_verbose', 'on'],
  ['auto_explain.log_level', 'notice'],
  ['client_min_messages', 'notice'],
];

function isLogScan(node: PlanNode): boolean {
  return node['Relation Name'] === 'messages' && (node.Schema === undefined || node.Schema === 'postbox');
}

/** Scans of postbox.messages that are not index scans, and index scans whose rows are sorted afterwards. */
function faultsOf(node: PlanNode, parent: PlanNode | undefined, indexes: Set<string>): string[] {
  const faults: string[] = [];
  if (isLogScan(node)) {
    const type = node['Node Type'];
    if (type !== 'Index Scan' && type !== 'Index Only Scan') {
      faults.push(`${type} on postbox.messages`);
    } else if (parent && (parent['Node Type'] === 'Sort' || parent['Node Type'] === 'Incremental Sort')) {
      faults.push(`sorts the rows ${type} using ${node['Index Name']} reads, instead of reading them in log order`);
    } else if (node['Index Name']) {
      indexes.add(node['Index Name']);
    }
  }
  for (const child of node.Plans ?? []) faults.push(...faultsOf(child, node, indexes));
  return faults;
}

/** The plan of one notice from auto_explain, or undefined for any other notice. */
function planOfNotice(notice: string): PlanNode | undefined {
  const start = notice.indexOf('{');
  if (!notice.startsWith('duration:') || start < 0) return undefined;
  try {
    return (JSON.parse(notice.slice(start)) as { Plan?: PlanNode }).Plan;
  } catch {
    return undefined;
  }
}

async function setLocal(tx: Executor, name: string, value: string): Promise<void> {
  await tx.query('select set_config($1, $2, true)', [name, value]);
}

/** Loads auto_explain into this session; the reason when PostgreSQL refuses (it takes a superuser) or has none. */
async function startExplaining(tx: Executor): Promise<string | undefined> {
  try {
    await withSavepoint(tx, 'postbox_doctor_explain', async () => {
      await tx.query(`load 'auto_explain'`);
      for (const [name, value] of explainSettings) await setLocal(tx, name, value);
    });
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

async function readWithPlans(tx: Executor, notices: readonly string[], reads: readonly ProbeRead[]): Promise<ReadPlanReport> {
  const problems: string[] = [];
  const indexes = new Set<string>();
  for (const read of reads) {
    for (const { mode, label } of planModes) {
      await setLocal(tx, 'plan_cache_mode', mode);
      const first = notices.length;
      await setLocal(tx, 'auto_explain.log_min_duration', '0');
      await readAfter(tx, read.options);
      await setLocal(tx, 'auto_explain.log_min_duration', '-1');
      const plans = notices.slice(first).flatMap((notice) => planOfNotice(notice) ?? []);
      const faults = new Set(plans.flatMap((plan) => faultsOf(plan, undefined, indexes)));
      if (plans.length === 0) faults.add('no plan was reported');
      for (const fault of faults) problems.push(`${read.label} (${label}): ${fault}`);
    }
  }
  return { seen: 'plans', reads: reads.length, problems, indexes: [...indexes].sort() };
}

async function scanCounters(tx: Executor): Promise<{ sequential: number; index: number }> {
  const { rows } = await tx.query<{ seq_scan: string | number | null; idx_scan: string | number | null }>(
    `select seq_scan, idx_scan from pg_stat_xact_all_tables where relid = 'postbox.messages'::regclass`,
  );
  return { sequential: Number(rows[0]?.seq_scan ?? 0), index: Number(rows[0]?.idx_scan ?? 0) };
}

/** Without auto_explain, the transaction's own scan counters still tell a sequential scan from an index scan. */
async function readWithCounters(tx: Executor, reads: readonly ProbeRead[], reason: string): Promise<ReadPlanReport> {
  const problems: string[] = [];
  let sequentialScans = 0;
  let indexScans = 0;
  for (const read of reads) {
    for (const { mode, label } of planModes) {
      await setLocal(tx, 'plan_cache_mode', mode);
      const before = await scanCounters(tx);
      await readAfter(tx, read.options);
      const after = await scanCounters(tx);
      const sequential = after.sequential - before.sequential;
      sequentialScans += sequential;
      indexScans += after.index - before.index;
      if (sequential > 0) problems.push(`${read.label} (${label}): ${plural(sequential, 'sequential scan')} of postbox.messages`);
    }
  }
  return { seen: 'counters', reason, reads: reads.length, sequentialScans, indexScans, problems };
}

/**
 * Runs each read through the read path itself (readAfter, the statement consumers run) with custom
 * and generic plans, in a transaction that is rolled back, and reports how it reached the log.
 * With auto_explain (a superuser's session) the nested plans are inspected; otherwise the scan
 * counters of the transaction are.
 */
export async function inspectReadPlans(db: Database, reads: readonly ProbeRead[]): Promise<ReadPlanReport> {
  if (!db.withNotices) return db.transaction((tx) => readWithCounters(tx, reads, 'this database connection cannot report notices'));
  return db.withNotices(async (tx, notices) => {
    const refused = await startExplaining(tx);
    return refused === undefined
      ? readWithPlans(tx, notices, reads)
      : readWithCounters(tx, reads, `auto_explain is unavailable: ${refused}`);
  });
}
