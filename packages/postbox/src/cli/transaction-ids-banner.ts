import type { TransactionIdCheck } from '../log/transaction-ids.js';
import { TransactionIdsBehindError } from '../log/transaction-ids-behind-error.js';

/** The error a reader would meet now, or undefined when the ids are current. */
export function transactionIdsError(check: TransactionIdCheck): TransactionIdsBehindError | undefined {
  return check.status === 'behind' ? new TransactionIdsBehindError(check.nextTransactionId, check.highestStored) : undefined;
}

/** The warning `postbox status` prints above everything else while readers refuse; empty when the ids are current. */
export function transactionIdsBanner(check: TransactionIdCheck): string {
  const error = transactionIdsError(check);
  if (!error) return '';
  return `!! TRANSACTION IDS BEHIND (${error.code}): consumer groups, the relay and \`postbox tail\` refuse to run.\n!! ${error.message}\n\n`;
}
