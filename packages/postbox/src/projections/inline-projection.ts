import type { EventLike, RecordedEvent } from '../eventstore/event.js';
import type { Executor } from '../sql/database.js';

export interface InlineProjectionContext {
  /** The append's transaction: read-model writes commit or roll back with the events. */
  tx: Executor;
  projection: string;
}

/** A projection that runs inside the append's transaction, so its read model is never behind. */
export interface InlineProjection<E extends EventLike = EventLike> {
  name: string;
  /** Only events of these categories; all when omitted. */
  categories?: readonly string[];
  /** Only events of these types; all when omitted. */
  eventTypes?: readonly string[];
  handle(events: RecordedEvent<E>[], context: InlineProjectionContext): Promise<void>;
}

function wants(projection: InlineProjection<any>, event: RecordedEvent): boolean {
  return (
    (!projection.categories || projection.categories.includes(event.category)) &&
    (!projection.eventTypes || projection.eventTypes.includes(event.type))
  );
}

/** Runs each inline projection on the events it wants, in the order given, on the append's transaction. */
export async function runInlineProjections(
  projections: readonly InlineProjection<any>[],
  events: RecordedEvent[],
  tx: Executor,
): Promise<void> {
  for (const projection of projections) {
    const selected = events.filter((event) => wants(projection, event));
    if (selected.length > 0) await projection.handle(selected, { tx, projection: projection.name });
  }
}
