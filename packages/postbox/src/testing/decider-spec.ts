import assert from 'node:assert/strict';
import { type Decider, decidedEvents } from '../eventstore/decider.js';
import type { EventLike } from '../eventstore/event.js';

/** What `then` expects to be thrown: an Error class, an error with these fields (`{ code }`), or a predicate. */
export type ErrorExpectation = (abstract new (...args: any[]) => Error) | Partial<Error & { code: string }> | ((error: unknown) => boolean);

/** What decide() did: the events it returned, or the error it threw. */
export interface DeciderOutcome<E> {
  events?: readonly E[];
  error?: unknown;
  threw: boolean;
}

export interface DeciderThen<E> {
  /**
   * Expected events (compared deeply, in order), or the error decide() must throw. Awaiting the
   * `when(...)` result itself, without an expectation, gives the DeciderOutcome.
   */
  then(expected: readonly E[] | ErrorExpectation): Promise<void>;
  /** Asserts on the decided events yourself. */
  thenEvents(check: (events: readonly E[]) => void | Promise<void>): Promise<void>;
}

export interface DeciderWhen<Command, E> {
  when(command: Command): DeciderThen<E>;
}

export interface DeciderSpecification<Command, E> {
  given(events: readonly E[]): DeciderWhen<Command, E>;
}

function isErrorClass(value: unknown): value is abstract new (...args: any[]) => Error {
  return typeof value === 'function' && (value === Error || (value as { prototype?: unknown }).prototype instanceof Error);
}

function checkError(error: unknown, expected: ErrorExpectation): void {
  if (isErrorClass(expected)) {
    assert.ok(error instanceof expected, `expected decide() to throw ${expected.name}, but it threw ${String(error)}`);
  } else if (typeof expected === 'function') {
    assert.ok((expected as (error: unknown) => boolean)(error), `the error decide() threw does not match: ${String(error)}`);
  } else {
    for (const [key, value] of Object.entries(expected)) {
      assert.deepEqual(
        (error as Record<string, unknown>)[key],
        value,
        `the error decide() threw has ${key} ${String((error as Record<string, unknown>)[key])}`,
      );
    }
  }
}

/**
 * Given/when/then for deciders, with any test runner: the state is built by evolve() from the given
 * events, decide() runs on the command, and `then` compares the events (or the error) it produced.
 *
 *     await deciderSpec(order).given([placed]).when(ship).then([shipped]);
 *     await deciderSpec(order).given([]).when(ship).then(OrderNotPlaced);
 */
export function deciderSpec<Command, E extends EventLike, State>(decider: Decider<Command, E, State>): DeciderSpecification<Command, E> {
  return {
    given: (given) => ({
      when: (command) => {
        const run = async (): Promise<DeciderOutcome<E>> => {
          const state = given.reduce((current, event) => decider.evolve(current, event), decider.initialState());
          try {
            return { events: decidedEvents(await decider.decide(command, state)), threw: false };
          } catch (error) {
            return { error, threw: true };
          }
        };
        return {
          // biome-ignore lint/suspicious/noThenProperty: given/when/then is the spec's vocabulary; awaited as a thenable it resolves to the outcome.
          async then(expected: readonly E[] | ErrorExpectation, onRejected?: (reason: unknown) => unknown) {
            if (typeof onRejected === 'function') {
              return run().then(expected as unknown as (outcome: DeciderOutcome<E>) => unknown, onRejected) as Promise<never>;
            }
            const outcome = await run();
            if (Array.isArray(expected)) {
              if (outcome.threw) throw outcome.error;
              assert.deepEqual(outcome.events, expected);
              return;
            }
            assert.ok(outcome.threw, `expected decide() to throw, but it returned ${JSON.stringify(outcome.events)}`);
            checkError(outcome.error, expected as ErrorExpectation);
          },
          async thenEvents(check) {
            const outcome = await run();
            if (outcome.threw) throw outcome.error;
            await check(outcome.events ?? []);
          },
        };
      },
    }),
  };
}
