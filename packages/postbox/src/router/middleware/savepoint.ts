import { withSavepoint } from '../../sql/savepoint.js';
import type { Middleware } from '../handler.js';

/**
 * In a transactional batch, runs each attempt inside a savepoint, so a failed attempt's writes are
 * undone while the rest of the batch (and its checkpoint) still commits.
 */
export function savepoint(): Middleware {
  return (next) => (message, context) => {
    const tx = context.tx;
    return tx ? withSavepoint(tx, 'postbox_message', () => next(message, context)) : next(message, context);
  };
}
