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
  /**
   * Deliver no earlier than this time (a time past means at once). The message waits, written in the
   * caller's transaction like any other, and enters the log when the timekeeper moves it: readers see
   * it after every message committed before that moment, not where its writing transaction stands.
   * Not with delayMs.
   */
  deliverAt?: Date;
  /** Deliver no earlier than this many milliseconds after the database's clock as the message is written. Not with deliverAt. */
  delayMs?: number;
}
