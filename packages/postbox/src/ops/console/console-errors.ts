import { PostboxError } from '../../errors/postbox-error.js';

/** The console's refusals: a missing or wrong token, a console that may not change state, a malformed request. */
export class ConsoleError extends PostboxError {}

/** `POSTBOX_ERR_BAD_REQUEST`, carrying the HTTP status Fastify gave (400, 413, 415...) when it has one. */
export function badRequest(message: string, status = 400): ConsoleError {
  return new ConsoleError('POSTBOX_ERR_BAD_REQUEST', message, { status });
}
