import { describeHolder, type WatermarkHolder, watermarkHolders } from '../log/watermark.js';
import { plural } from '../text/plural.js';
import type { DoctorCheck } from './doctor-check.js';

function endCommand(holder: WatermarkHolder): string {
  if (holder.kind === 'prepared') {
    const gid = `'${(holder.gid ?? '').replaceAll("'", "''")}'`;
    return `\`COMMIT PREPARED ${gid}\` or \`ROLLBACK PREPARED ${gid}\` in database ${holder.database}`;
  }
  return `\`SELECT pg_terminate_backend(${holder.pid})\``;
}

function endFix(holders: readonly WatermarkHolder[]): string {
  return `end ${holders.length === 1 ? 'it' : 'them'} in the application that opened ${holders.length === 1 ? 'it' : 'them'} (commit or roll back), or ${holders
    .map(endCommand)
    .join(', ')}; \`idle_in_transaction_session_timeout\` ends forgotten sessions on its own`;
}

/**
 * Open writing transactions anywhere on the server: readers of the log stop at the oldest one, in
 * every database. Warn past one threshold, fail past the other.
 */
export const longTransactionsCheck: DoctorCheck = {
  check: 'long-transactions',
  title: 'long transactions',
  needsSchema: false,
  async run({ db, settings }) {
    const holders = await watermarkHolders(db);
    const older = (seconds: number) =>
      holders.filter((holder) => holder.transactionSeconds !== null && holder.transactionSeconds >= seconds);
    const long = older(settings.longTransactionWarnSeconds);
    if (long.length > 0) {
      const failing = older(settings.longTransactionFailSeconds).length > 0;
      return {
        verdict: failing ? 'fail' : 'warn',
        finding: `${plural(long.length, 'open writing transaction')} older than ${settings.longTransactionWarnSeconds}s hold${long.length === 1 ? 's' : ''} back every reader of the log: ${long.map(describeHolder).join('; ')}`,
        fix: endFix(long),
      };
    }
    const unseen = holders.find((holder) => holder.holdsWatermark && holder.transactionSeconds === null);
    if (unseen) {
      const { rows } = await db.query<{ role: string }>('select current_user as role');
      return {
        verdict: 'warn',
        finding: `the transaction readers wait for belongs to a session whose age this role may not see: ${describeHolder(unseen)}`,
        fix: `\`GRANT pg_read_all_stats TO ${rows[0]?.role ?? '<this role>'}\`, then run the doctor again`,
      };
    }
    return {
      verdict: 'ok',
      finding:
        holders.length === 0
          ? 'no open writing transaction on the server'
          : `${plural(holders.length, 'open writing transaction')} on the server, none older than ${settings.longTransactionWarnSeconds}s`,
    };
  },
};
