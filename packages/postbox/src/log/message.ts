/** Headers Postbox understands; custom string headers sit beside them. */
export interface MessageHeaders {
  traceId?: string;
  correlationId?: string;
  causationId?: string;
  userId?: string;
  schemaVersion: number;
  [name: string]: string | number | undefined;
}

/** A message as the log stores it and readers receive it. */
export interface LogMessage<P = unknown> {
  id: string;
  topic: string;
  type: string;
  key: string | null;
  payload: P;
  headers: MessageHeaders;
  globalPosition: bigint;
  transactionId: bigint;
  streamId: string | null;
  streamPosition: bigint | null;
  createdAt: Date;
}

/**
 * The columns every read of the log selects, from postbox.messages or from postbox.read_after.
 * created_at comes as epoch milliseconds, which is much cheaper to turn into a Date than a timestamp.
 */
export const messageColumns = `global_position, transaction_id::text as transaction_id, topic, message_id, type, key, payload,
  headers, stream_id, stream_position, (extract(epoch from created_at) * 1000)::float8 as created_at`;

/** A row of messageColumns as the drivers return it. */
export interface MessageRow {
  global_position: string | number;
  transaction_id: string;
  topic: string;
  message_id: string;
  type: string;
  key: string | null;
  payload: unknown;
  headers: MessageHeaders;
  stream_id: string | null;
  stream_position: string | number | null;
  created_at: number;
}

export function toLogMessage(row: MessageRow): LogMessage {
  return {
    id: row.message_id,
    topic: row.topic,
    type: row.type,
    key: row.key,
    payload: row.payload,
    headers: row.headers,
    globalPosition: BigInt(row.global_position),
    transactionId: BigInt(row.transaction_id),
    streamId: row.stream_id,
    streamPosition: row.stream_position === null ? null : BigInt(row.stream_position),
    createdAt: new Date(row.created_at),
  };
}
