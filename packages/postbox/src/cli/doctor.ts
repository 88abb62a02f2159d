import type { Command } from 'commander';
import { type DoctorResult, doctorFailed, runDoctor } from '../diagnosis/doctor.js';
import { type ConnectionFlags, databaseUrlOption, withDatabase } from './connect.js';
import type { CliContext } from './context.js';
import { toJson } from './output.js';

function line(result: DoctorResult): string {
  const fix = result.fix === undefined || result.verdict === 'ok' ? '' : `. Fix: ${result.fix}`;
  return `${result.verdict.padEnd(4)}  ${result.title}: ${result.finding}${fix}`;
}

function tally(results: readonly DoctorResult[]): string {
  const count = (verdict: DoctorResult['verdict']) => results.filter((result) => result.verdict === verdict).length;
  return `${results.length} checks: ${count('ok')} ok, ${count('warn')} warn, ${count('fail')} fail.`;
}

export function registerDoctor(program: Command, context: CliContext): void {
  program
    .command('doctor')
    .description(
      'Check the database for what stops or slows readers: schema version, transaction ids after a restore, the read path plan, autovacuum, long transactions, ' +
        'stalled groups, dead letters, partitions without an owner. One line per check (ok, warn or fail, the finding, the fix); ' +
        'exits 1 when a check fails, 0 otherwise (warnings included)',
    )
    .option('--json', 'print the results as a JSON array')
    .addOption(databaseUrlOption())
    .action(async (options: ConnectionFlags & { json?: boolean }) => {
      // A plain connection: the doctor must also examine a database whose schema is missing or out of date.
      const results = await withDatabase(options, context.env, (db) => runDoctor(db));
      if (options.json) {
        await context.out.line(toJson(results, true));
      } else {
        for (const result of results) await context.out.line(line(result));
        await context.out.notice(tally(results));
      }
      if (doctorFailed(results)) context.exitCode = 1;
    });
}
