import { addDeadLetter } from '../../deadletters/dead-letter-store.js';
import { LeaseLostError } from '../../errors/postbox-error.js';
import { failActiveSpan, spanEvent } from '../../observability/tracing.js';
import type { Executor } from '../../sql/database.js';
import type { Middleware } from '../handler.js';
import { describeSource } from '../routed-message.js';
import { clearFailures, failuresOf } from './failures.js';

/**
 * After the last attempt, stores the message with its error in the dead-letter store and lets the
 * group move on. A message that could not be decoded goes there at once. A stop or a lost lease is
 * not a failure of the message, so those errors pass through and the batch is redelivered.
 */
export function deadLetter(db: Executor): Middleware {
  return (next) => async (message, context) => {
    let error: Error;
    if (message.decodeError) {
      error = message.decodeError;
    } else {
      try {
        return await next(message, context);
      } catch (thrown) {
        if (thrown instanceof LeaseLostError || context.signal.aborted) throw thrown;
        error = thrown as Error;
      }
    }
    const now = new Date();
    const failures = failuresOf(message) ?? { attempts: message.decodeError ? 0 : 1, firstFailedAt: now, lastFailedAt: now };
    await addDeadLetter(context.tx ?? db, {
      group: context.group,
      handler: context.handler,
      source: message.source.kind,
      messageId: message.id,
      topic: message.topic,
      type: message.type || null,
      key: message.key,
      // A payload the transport parsed is kept even when the route could not decode it, so a retry can decode it again.
      payload: message.decodeError && message.raw !== undefined ? undefined : message.payload,
      rawPayload: message.raw ?? null,
      headers: message.headers,
      sourcePosition: describeSource(message.source),
      error,
      attempts: failures.attempts,
      firstFailedAt: failures.firstFailedAt,
      lastFailedAt: failures.lastFailedAt,
    });
    clearFailures(message);
    spanEvent('dead_letter', { 'postbox.attempts': failures.attempts }, error);
    failActiveSpan(error);
    context.logger.error({ err: error, attempts: failures.attempts }, 'message moved to dead letters');
    return 'dead_lettered';
  };
}
