import assert from 'node:assert/strict';
import type { EventLike, RecordedEvent } from '../eventstore/event.js';
import { categoryOf } from '../eventstore/stream-id.js';
import type { InlineProjection } from '../projections/inline-projection.js';
import { type AsyncProjection, type ProjectionContext, versionedTable } from '../projections/projection.js';
import type { Database, Executor } from '../sql/database.js';

/** An event for a projection spec: its stream, type and data; positions are filled in. */
export type GivenEvent<E extends EventLike = EventLike> = E & {
  streamId: string;
  schemaVersion?: number;
  headers?: Record<string, string>;
};

export interface ProjectionThen {
  /** Runs the query on the read model the events produced and compares the rows deeply. */
  expectRows(sql: string, params: readonly unknown[], rows: readonly Record<string, unknown>[]): Promise<void>;
  /** Reads whatever state the projection keeps, with your own query, and compares it deeply. */
  expectState<T>(read: (tx: Executor, context: ProjectionContext) => Promise<T>, expected: T): Promise<void>;
}

export interface ProjectionSpecification<E extends EventLike> {
  given(events: readonly GivenEvent<E>[]): ProjectionThen;
}

class Rollback extends Error {}

/**
 * Given events, expect rows or a state: runs an async or inline projection's handle() on the events
 * inside a transaction that is rolled back afterwards, with its read model created for `version`
 * (1 by default), so specs leave nothing behind and can share one database.
 */
export function projectionSpec<E extends EventLike>(
  projection: AsyncProjection<E> | InlineProjection<E>,
  options: { db: Database; version?: number },
): ProjectionSpecification<E> {
  const version = options.version ?? 1;
  return {
    given: (given) => {
      const run = async (check: (tx: Executor, context: ProjectionContext) => Promise<void>) => {
        try {
          await options.db.transaction(async (tx) => {
            const context: ProjectionContext = {
              tx,
              projection: projection.name,
              version,
              table: (base) => versionedTable(base, version),
              signal: new AbortController().signal,
            };
            if ('readModel' in projection) await projection.readModel?.create(tx, version);
            const events = record(given);
            if (events.length > 0)
              await (projection.handle as (events: RecordedEvent[], context: ProjectionContext) => Promise<void>)(events, context);
            await check(tx, context);
            throw new Rollback();
          });
        } catch (error) {
          if (!(error instanceof Rollback)) throw error;
        }
      };
      return {
        expectRows: (sql, params, rows) =>
          run(async (tx) => {
            const result = await tx.query(sql, params);
            assert.deepEqual(result.rows, rows);
          }),
        expectState: (read, expected) =>
          run(async (tx, context) => {
            assert.deepEqual(await read(tx, context), expected);
          }),
      };
    },
  };
}

function record(events: readonly GivenEvent[]): RecordedEvent[] {
  const positions = new Map<string, number>();
  const now = new Date();
  return events.map((event, index) => {
    const streamPosition = (positions.get(event.streamId) ?? 0) + 1;
    positions.set(event.streamId, streamPosition);
    const schemaVersion = event.schemaVersion ?? 1;
    return {
      type: event.type,
      data: event.data,
      id: `00000000-0000-7000-8000-${String(index + 1).padStart(12, '0')}`,
      streamId: event.streamId,
      streamPosition,
      category: categoryOf(event.streamId),
      globalPosition: BigInt(index + 1),
      transactionId: 1n,
      schemaVersion,
      headers: { ...event.headers, schemaVersion },
      createdAt: now,
    };
  });
}
