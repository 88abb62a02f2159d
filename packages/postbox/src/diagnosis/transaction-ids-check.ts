import { describeStoredTransactionId, recoverCommand } from '../log/stored-transaction-id.js';
import { checkTransactionIds } from '../log/transaction-ids.js';
import type { DoctorCheck } from './doctor-check.js';

/** The server's transaction ids behind the log's: a dump restored, or a cut-over, from another server. */
export const transactionIdsCheck: DoctorCheck = {
  check: 'transaction-ids',
  title: 'transaction ids after a restore',
  needsSchema: true,
  async run({ db }) {
    const check = await checkTransactionIds(db);
    if (check.status === 'ok')
      return { verdict: 'ok', finding: `the log's ids are below this server's next id (${check.nextTransactionId})` };
    return {
      verdict: 'fail',
      finding: `restored or cut over from another server: this server's next transaction id is ${check.nextTransactionId}, but ${describeStoredTransactionId(check.highestStored)} holds ${check.highestStored.value}; readers refuse to start`,
      fix: `stop the processes that run consumer groups, then \`${recoverCommand} --dry-run\` and \`${recoverCommand}\``,
    };
  },
};
