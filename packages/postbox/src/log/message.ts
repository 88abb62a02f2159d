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

/** A row of postbox.read_after as drivers return it. */
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
  created_at: Date | string;
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
    createdAt: row.created_at instanceof Date ? row.created_at : new Date(row.created_at),
  };
}
