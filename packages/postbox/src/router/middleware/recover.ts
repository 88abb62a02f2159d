import { inspect } from 'node:util';
import { HandlerError } from '../../errors/postbox-error.js';
import type { Middleware } from '../handler.js';

/** Turns a thrown non-Error value (a string, an object, undefined) into a typed HandlerError. */
export function asError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new HandlerError(
    'POSTBOX_ERR_HANDLER_FAILED',
    `The handler threw a value that is not an Error: ${inspect(thrown, { depth: 2, breakLength: Number.POSITIVE_INFINITY }).slice(0, 500)}`,
    { thrown: typeof thrown },
  );
}

export function recover(): Middleware {
  return (next) => async (message, context) => {
    try {
      return await next(message, context);
    } catch (thrown) {
      throw asError(thrown);
    }
  };
}
