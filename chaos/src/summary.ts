import type { ScenarioOutcome } from './scenario.js';

export interface ScenarioReport {
  name: string;
  outcome?: ScenarioOutcome;
  /** Set when the scenario itself threw: the suite could not check its invariants. */
  error?: string;
  elapsedMs: number;
}

export function passed(report: ScenarioReport): boolean {
  return report.error === undefined && report.outcome !== undefined && report.outcome.violations.length === 0;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

const header = ['scenario', 'runs', 'sent', 'received', 'lost', 'duplicated', 'max recovery', 'time', 'result'];

function row(report: ScenarioReport): string[] {
  const o = report.outcome;
  const figures = o
    ? [o.runs, o.sent, o.received, o.lost, o.duplicated].map((n) => n.toLocaleString('en-US')).concat(seconds(o.maxRecoveryMs))
    : ['-', '-', '-', '-', '-', '-'];
  return [report.name, ...figures, seconds(report.elapsedMs), passed(report) ? 'pass' : 'FAIL'];
}

/** The summary as a Markdown table, followed by each scenario's notes and failures. */
export function formatSummary(reports: readonly ScenarioReport[]): string {
  const rows = [header, ...reports.map(row)];
  const widths = header.map((_, column) => Math.max(...rows.map((r) => (r[column] ?? '').length)));
  const line = (r: readonly string[]) => `| ${r.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ')} |`;
  const out = [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line), ''];
  for (const report of reports) {
    const details = [
      ...(report.outcome?.notes ?? []),
      ...(report.outcome?.violations ?? []).map((v) => `VIOLATION: ${v}`),
      ...(report.error ? [`ERROR: ${report.error}`] : []),
    ];
    if (details.length > 0) out.push(`- ${report.name}: ${details.join('; ')}`);
  }
  return out.join('\n');
}
