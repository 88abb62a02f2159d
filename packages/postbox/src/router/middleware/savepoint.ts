import type { Middleware } from '../handler.js';

/**
 * In a transactional batch, runs each attempt inside a savepoint, so a failed attempt's writes are
 * undone while the rest of the batch (and its checkpoint) still commits.
 */
export function savepoint(): Middleware {
  return (next) => async (message, context) => {
    const tx = context.tx;
    if (!tx) return next(message, context);
    await tx.query('savepoint postbox_message');
    try {
      const outcome = await next(message, context);
      await tx.query('release savepoint postbox_message');
      return outcome;
    } catch (error) {
      await tx.query('rollback to savepoint postbox_message');
      throw error;
    }
  };
}
