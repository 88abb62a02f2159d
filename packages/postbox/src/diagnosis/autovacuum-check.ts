import type { DoctorCheck } from './doctor-check.js';

interface VacuumRow {
  server_autovacuum: string;
  track_counts: string;
  reloptions: string[] | null;
  rows: string | number | null;
  vacuumed: boolean;
  analysed: boolean;
}

/** How PostgreSQL spells a boolean storage parameter set to false. */
const offWords = new Set(['false', 'off', 'no', '0', 'f', 'n']);

function tableAutovacuumOff(reloptions: readonly string[] | null): boolean {
  const setting = reloptions?.find((option) => option.toLowerCase().startsWith('autovacuum_enabled='));
  return setting !== undefined && offWords.has(setting.slice(setting.indexOf('=') + 1).toLowerCase());
}

/**
 * Autovacuum reaches the log: retention and redelivery leave dead rows, and the planner needs
 * fresh statistics. Checked: the server's autovacuum and track_counts settings, the table's own
 * autovacuum_enabled, and whether a large log was ever vacuumed and analysed.
 */
export const autovacuumCheck: DoctorCheck = {
  check: 'autovacuum',
  title: 'autovacuum on the log',
  needsSchema: true,
  async run({ db, settings }) {
    const { rows } = await db.query<VacuumRow>(
      `select current_setting('autovacuum') as server_autovacuum, current_setting('track_counts') as track_counts,
              c.reloptions, s.n_live_tup + s.n_dead_tup as rows,
              coalesce(s.last_autovacuum, s.last_vacuum) is not null as vacuumed,
              coalesce(s.last_autoanalyze, s.last_analyze) is not null as analysed
       from pg_class c left join pg_stat_all_tables s on s.relid = c.oid
       where c.oid = 'postbox.messages'::regclass`,
    );
    const row = rows[0];
    if (!row) return { verdict: 'fail', finding: 'postbox.messages is missing', fix: 'run `postbox migrate`' };
    const embedded = db.kind === 'pglite';
    const problems: string[] = [];
    const fixes: string[] = [];
    // Embedded PGlite runs no background workers at all: its settings say nothing, only the statistics count.
    if (!embedded && row.server_autovacuum !== 'on') {
      problems.push('autovacuum is off on the server');
      fixes.push('set `autovacuum = on` in postgresql.conf and reload (`SELECT pg_reload_conf()`)');
    }
    if (!embedded && row.track_counts !== 'on') {
      problems.push('track_counts is off, so autovacuum cannot tell when a table needs it');
      fixes.push('set `track_counts = on` in postgresql.conf and reload');
    }
    if (tableAutovacuumOff(row.reloptions)) {
      problems.push('autovacuum is disabled on postbox.messages (autovacuum_enabled = false)');
      fixes.push('run `ALTER TABLE postbox.messages RESET (autovacuum_enabled)`');
    }
    const tableRows = Number(row.rows ?? 0);
    const never = [!row.vacuumed && 'vacuumed', !row.analysed && 'analysed'].filter(Boolean);
    if (tableRows >= settings.autovacuumMinRows && never.length > 0) {
      problems.push(`postbox.messages holds ${tableRows} rows and was never ${never.join(' or ')}`);
      fixes.push(
        'run `VACUUM (ANALYZE) postbox.messages`, and look in the server log for why autovacuum has not (log_autovacuum_min_duration)',
      );
    }
    if (problems.length > 0) return { verdict: 'warn', finding: problems.join('; '), fix: fixes.join('; ') };
    const state = row.vacuumed && row.analysed ? 'vacuumed and analysed before' : `${tableRows} rows, not yet due`;
    return {
      verdict: 'ok',
      finding: `${embedded ? 'embedded PGlite (no autovacuum worker)' : 'autovacuum is on'}; postbox.messages ${state}`,
    };
  },
};
