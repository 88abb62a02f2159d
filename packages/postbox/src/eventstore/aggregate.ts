import { defaults } from '../config/defaults.js';
import { ValidationError } from '../errors/postbox-error.js';
import type { EventLike } from './event.js';
import type { Upcasters } from './upcasters.js';

/** When a new snapshot is taken: every N events, or whenever a function says so. */
export type SnapshotPolicy =
  | { every: number }
  | ((context: { streamId: string; version: number; eventsSinceSnapshot: number; state: unknown }) => boolean);

export interface SnapshotOptions<State> {
  policy?: SnapshotPolicy;
  /** Bump it when the state's shape changes: older snapshots are then ignored and replaced. */
  schemaVersion?: number;
  /** State to JSON; the state itself by default. */
  toSnapshot?(state: State): unknown;
  /** JSON to state; a throw (or a damaged snapshot) falls back to a full replay. */
  fromSnapshot?(snapshot: unknown): State;
}

/** How a stream's events fold into state. A Decider is one, with decide() besides. */
export interface Evolver<State, E extends EventLike = EventLike> {
  initialState(): State;
  evolve(state: State, event: E): State;
}

/**
 * An aggregate: its evolve function, and how its snapshots are kept. The bulk snapshot job and the
 * `postbox snapshots create --module` command take one of these.
 */
export interface AggregateDefinition<State = any, E extends EventLike = any> extends Evolver<State, E> {
  /** The snapshot name; one stream may hold snapshots of several aggregates. */
  name: string;
  /** The category the bulk snapshot job goes through when not told otherwise. */
  category?: string;
  snapshots?: SnapshotOptions<State> | false;
  upcasters?: Upcasters;
}

export function defineAggregate<State, E extends EventLike>(definition: AggregateDefinition<State, E>): AggregateDefinition<State, E> {
  if (typeof definition?.name !== 'string' || definition.name === '') {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'An aggregate needs a name (its snapshots are stored under it).', {
      option: 'name',
    });
  }
  if (typeof definition.evolve !== 'function' || typeof definition.initialState !== 'function') {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `Aggregate ${definition.name} needs evolve() and initialState().`, {
      option: 'evolve',
    });
  }
  return definition;
}

export function snapshotSchemaVersion(options: SnapshotOptions<unknown> | undefined): number {
  return options?.schemaVersion ?? defaults.eventStore.snapshotSchemaVersion;
}

export function shouldSnapshot(
  policy: SnapshotPolicy | undefined,
  context: { streamId: string; version: number; eventsSinceSnapshot: number; state: unknown },
): boolean {
  if (!policy || context.eventsSinceSnapshot <= 0) return false;
  if (typeof policy === 'function') return policy(context);
  return context.eventsSinceSnapshot >= policy.every;
}
