import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { isLoopback } from '../config.js';
import { ApiError } from '../errors.js';

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Guards the ops routes that change state. With OPS_TOKEN they need `Authorization: Bearer
 * <OPS_TOKEN>`. Without it they work only while the server listens on loopback alone.
 */
export function opsGuard(options: { token: string | undefined; host: string }): (request: FastifyRequest) => void {
  const expected = options.token === undefined ? undefined : digest(`Bearer ${options.token}`);
  return (request) => {
    if (expected) {
      const given = request.headers.authorization;
      if (typeof given !== 'string' || !timingSafeEqual(digest(given), expected)) {
        throw new ApiError('TODO_ERR_UNAUTHORIZED', 'This operation needs the header Authorization: Bearer <OPS_TOKEN>.');
      }
      return;
    }
    if (!isLoopback(options.host)) {
      throw new ApiError(
        'TODO_ERR_OPS_DISABLED',
        `Operations that change state are disabled: the server listens on ${options.host} and OPS_TOKEN is not set. Set OPS_TOKEN to a secret (at least 8 characters) and send Authorization: Bearer <OPS_TOKEN>, or listen on 127.0.0.1 (HOST).`,
      );
    }
  };
}
