import { ValidationError } from '../errors/postbox-error.js';
import type { EventLike, RecordedEvent } from '../eventstore/event.js';
import type { Executor } from '../sql/database.js';
import { type Row, type UpsertOptions, upsertRows } from './upsert-rows.js';

export interface ProjectionContext {
  /** The batch's transaction: read-model writes commit together with the projection's checkpoint. */
  tx: Executor;
  projection: string;
  /** The read-model version this handler is building (the active one, or the next during a rebuild). */
  version: number;
  /** `${base}_v${version}`: the table of this version, for read models kept as one table per version. */
  table(base: string): string;
  signal: AbortSignal;
}

/**
 * How a projection's read model exists per version, so that a rebuild can build version N+1 beside
 * the active version N and swap them in one transaction.
 */
export interface ReadModel {
  /** Creates the read model of a version (e.g. tables suffixed _v2). Runs once per version, in a transaction. */
  create(tx: Executor, version: number): Promise<void>;
  /**
   * Makes a version the one readers see (e.g. `create or replace view orders as select * from orders_v2`).
   * Runs in the transaction that swaps the active version, and when the projection is first registered.
   */
  activate?(tx: Executor, version: number): Promise<void>;
  /** Removes a version that was swapped out (its group stopped first). */
  drop?(tx: Executor, version: number): Promise<void>;
}

/** An async projection: a transactional consumer group on category topics that keeps a read model. */
export interface AsyncProjection<E extends EventLike = EventLike> {
  name: string;
  /** Stream categories (log topics) it reads. */
  categories: readonly string[];
  /** Only events of these types reach handle(); others only advance the checkpoint. */
  eventTypes?: readonly string[];
  readModel?: ReadModel;
  /** Applies a batch of events in log order. Throw to refuse the batch (see isPermanent). */
  handle(events: RecordedEvent<E>[], context: ProjectionContext): Promise<void>;
  /**
   * Whether a failure is permanent: the event then goes to dead letters and the projection moves on.
   * Other failures are retried with backoff. By default: errors that say `retriable: false`.
   */
  isPermanent?(error: unknown, event: RecordedEvent<E>): boolean;
}

/**
 * A projection that keeps one row per key: each event becomes a row (or none), and each batch is
 * written with one upsert, whatever its size.
 */
export interface RowsPerEvent<E extends EventLike = EventLike> extends UpsertOptions {
  /** The table written: a name, or a function of the context, e.g. `({ table }) => table('orders')` for a model per version. */
  table: string | ((context: ProjectionContext) => string);
  /** The row an event becomes (column name to value); null or undefined for none. */
  row(event: RecordedEvent<E>): Row | null | undefined;
}

/** What defineProjection takes: a handle() of your own, or the rows each event becomes. */
export type ProjectionDefinition<E extends EventLike = EventLike> = Omit<AsyncProjection<E>, 'handle'> &
  ({ handle: AsyncProjection<E>['handle']; upsert?: undefined } | { upsert: RowsPerEvent<E>; handle?: undefined });

function upsertHandler<E extends EventLike>(spec: RowsPerEvent<E>): AsyncProjection<E>['handle'] {
  return async (events, context) => {
    const rows: Row[] = [];
    for (const event of events) {
      const row = spec.row(event);
      if (row !== null && row !== undefined) rows.push(row);
    }
    if (rows.length === 0) return;
    const table = typeof spec.table === 'function' ? spec.table(context) : spec.table;
    await upsertRows(context.tx, table, rows, spec);
  };
}

export function defineProjection<E extends EventLike>(definition: ProjectionDefinition<E>): AsyncProjection<E> {
  if (typeof definition?.name !== 'string' || definition.name === '' || definition.name.length > 150) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'A projection needs a name of 1 to 150 characters.', { option: 'name' });
  }
  if (!Array.isArray(definition.categories) || definition.categories.length === 0) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `Projection ${definition.name} must read at least one category.`, {
      option: 'categories',
    });
  }
  const { name } = definition;
  const { upsert, handle, ...rest } = definition;
  if (upsert !== undefined) {
    if (handle !== undefined) {
      throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `Projection ${name} takes handle() or upsert, not both.`, {
        option: 'upsert',
      });
    }
    if (typeof upsert?.row !== 'function' || (typeof upsert.table !== 'string' && typeof upsert.table !== 'function')) {
      throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `Projection ${name} needs upsert.table and upsert.row(event).`, {
        option: 'upsert',
      });
    }
    return { ...rest, handle: upsertHandler(upsert) };
  }
  if (typeof handle !== 'function') {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `Projection ${name} needs a handle() function.`, { option: 'handle' });
  }
  return definition as AsyncProjection<E>;
}

/** The consumer group that builds a version of a projection. */
export function projectionGroup(name: string, version: number): string {
  return `projection:${name}:v${version}`;
}

export function versionedTable(base: string, version: number): string {
  return `${base}_v${version}`;
}

export function isPermanentFailure(projection: AsyncProjection<any>, error: unknown, event: RecordedEvent): boolean {
  if (projection.isPermanent) return projection.isPermanent(error, event);
  return (error as { retriable?: unknown } | null)?.retriable === false;
}
