/** A place in the log: readers go strictly after it, in (transactionId, globalPosition) order. */
export interface LogPosition {
  transactionId: bigint;
  globalPosition: bigint;
}

export const beginningOfLog: LogPosition = Object.freeze({ transactionId: 0n, globalPosition: 0n });

export function comparePositions(a: LogPosition, b: LogPosition): number {
  if (a.transactionId !== b.transactionId) return a.transactionId < b.transactionId ? -1 : 1;
  if (a.globalPosition !== b.globalPosition) return a.globalPosition < b.globalPosition ? -1 : 1;
  return 0;
}
