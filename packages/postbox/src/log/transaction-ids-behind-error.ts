import { PostboxError } from '../errors/postbox-error.js';
import { describeStoredTransactionId, recoverCommand, type StoredTransactionId } from './stored-transaction-id.js';

/**
 * The log holds a transaction id at or above the next one this server will assign: the database was
 * restored, or cut over, from another server. Readers refuse rather than skip the messages written here.
 */
export class TransactionIdsBehindError extends PostboxError {
  readonly nextTransactionId: bigint;
  readonly highestStored: StoredTransactionId;

  constructor(nextTransactionId: bigint, highestStored: StoredTransactionId) {
    super(
      'POSTBOX_ERR_TRANSACTION_IDS_BEHIND',
      `This server's transaction ids are behind the log's: the next id it will assign is ${nextTransactionId}, but ${describeStoredTransactionId(highestStored)} holds ${highestStored.value}. The database was restored or cut over from another server, and readers would skip the messages written here. Stop the processes that run consumer groups, then run \`${recoverCommand} --dry-run\` to see the change and \`${recoverCommand}\` to make it (recoverAfterRestore() in the library).`,
      {
        nextTransactionId: String(nextTransactionId),
        highestStored: String(highestStored.value),
        where: describeStoredTransactionId(highestStored),
      },
    );
    this.nextTransactionId = nextTransactionId;
    this.highestStored = highestStored;
  }
}
