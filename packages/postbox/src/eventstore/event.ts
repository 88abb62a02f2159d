import type { MessageHeaders } from '../log/message.js';

/** The least an event has: a type and its data. Deciders and projections use unions of these. */
export interface EventLike {
  type: string;
  data: unknown;
}

/** An event to append. Typed ids and headers are stored as the log message's headers. */
export interface EventData<Type extends string = string, Data = unknown> {
  type: Type;
  data: Data;
  /** A UUID of the caller's choosing; by default a UUIDv7 is generated. */
  id?: string;
  /** The data's schema version; by default the latest version the upcasters know for the type, else 1. */
  schemaVersion?: number;
  /** Extra string headers. */
  headers?: Record<string, string>;
  /** The same as headers, for code that calls them metadata; both are merged. */
  metadata?: Record<string, string>;
  traceId?: string;
  correlationId?: string;
  causationId?: string;
  userId?: string;
}

/** Where and when an event was stored. */
export interface EventRecord {
  id: string;
  streamId: string;
  /** 1 for the stream's first event. */
  streamPosition: number;
  /** The stream's category, which is also the log topic. */
  category: string;
  globalPosition: bigint;
  transactionId: bigint;
  schemaVersion: number;
  headers: MessageHeaders;
  createdAt: Date;
}

/** A stored event: its type and data (upcast to the current schema) with where and when it was stored. */
export type RecordedEvent<E extends EventLike = EventLike> = E extends EventLike
  ? { type: E['type']; data: E['data'] } & EventRecord
  : never;

/**
 * The version a stream must be at for an append to go in: a number (0 for a stream without events),
 * `no_stream`, `stream_exists`, or `any` (no check).
 */
export type ExpectedVersion = number | 'no_stream' | 'stream_exists' | 'any';

/** A stream's state. `no_stream` when nothing was ever written to it. */
export type StreamState = 'no_stream' | 'active' | 'archived' | 'tombstoned';
