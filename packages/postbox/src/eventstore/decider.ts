import type { Evolver } from './aggregate.js';
import type { EventLike } from './event.js';

/**
 * The functional aggregate: decide() turns a command and the current state into new events (or
 * throws a business error), evolve() folds an event into state, initialState() is where a stream starts.
 */
export interface Decider<Command, E extends EventLike, State> extends Evolver<State, E> {
  decide(command: Command, state: State): E | readonly E[] | Promise<E | readonly E[]>;
}

/** decide()'s answer as a list. */
export function decidedEvents<E>(decided: E | readonly E[]): readonly E[] {
  return Array.isArray(decided) ? (decided as readonly E[]) : [decided as E];
}
