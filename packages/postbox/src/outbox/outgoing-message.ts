/** What a caller enqueues: the common headers are typed fields. */
export interface OutgoingMessage<P = unknown> {
  topic: string;
  type: string;
  payload: P;
  /** Partition key: messages with one key are handled in order. */
  key?: string | null;
  /** A UUID of the caller's choosing; by default a UUIDv7 is generated. */
  id?: string;
  traceId?: string;
  correlationId?: string;
  causationId?: string;
  userId?: string;
  /** The payload's schema version, read by upcasters. Defaults to 1. */
  schemaVersion?: number;
  /** Extra string headers. */
  headers?: Record<string, string>;
}
