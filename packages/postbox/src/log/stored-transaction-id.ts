/** The command that brings the log onto this server's transaction ids, as errors and status name it. */
export const recoverCommand = 'npx postbox recover-after-restore';

/** A transaction id stored in the Postbox schema, and where. */
export interface StoredTransactionId {
  value: bigint;
  /** `schema.table.column`. */
  column: string;
  /** For a log row: its topic and position. */
  topic: string | null;
  globalPosition: bigint | null;
  /** For a checkpoint or a start snapshot: its group (and partition). */
  group: string | null;
  partition: number | null;
}

/** Where a stored id lives, in words: `postbox.messages.transaction_id (topic orders, position 42)`. */
export function describeStoredTransactionId(stored: StoredTransactionId): string {
  const parts: string[] = [];
  if (stored.topic !== null) parts.push(`topic ${stored.topic}`);
  if (stored.globalPosition !== null) parts.push(`position ${stored.globalPosition}`);
  if (stored.group !== null) parts.push(`group ${stored.group}`);
  if (stored.partition !== null) parts.push(`partition ${stored.partition}`);
  return parts.length === 0 ? stored.column : `${stored.column} (${parts.join(', ')})`;
}
