import { LeaseLostError } from '../../errors/postbox-error.js';
import { spanEvent } from '../../observability/tracing.js';
import type { HandlerContext, Middleware } from '../handler.js';
import type { RoutedMessage } from '../routed-message.js';

/** A message parked: its attempts so far, and how long until the next. */
export interface ParkedAttempt {
  attempts: number;
  delayMs: number;
}

/** Decides, and records, what becomes of a message whose attempts in process are spent. */
export interface Parking {
  /** Parks the message and says until when; undefined leaves it to dead letters. */
  park(message: RoutedMessage, error: Error, context: HandlerContext): ParkedAttempt | undefined;
}

/**
 * Sits between dead letter and retry: once retry has spent its quick attempts, the message is parked
 * (it leaves its batch and is attempted again later) rather than failed, unless `parking` says it
 * goes to dead letters. A stop or a lost lease is not a failure of the message and passes through.
 */
export function park(parking: Parking): Middleware {
  return (next) => async (message, context) => {
    try {
      return await next(message, context);
    } catch (thrown) {
      if (thrown instanceof LeaseLostError || context.signal.aborted) throw thrown;
      const error = thrown as Error;
      const parked = parking.park(message, error, context);
      if (!parked) throw error;
      spanEvent('park', { 'postbox.attempts': parked.attempts, 'postbox.park_delay_ms': parked.delayMs }, error);
      context.logger.warn({ err: error, attempts: parked.attempts, delayMs: parked.delayMs }, 'message parked; only its key waits');
      return 'parked';
    }
  };
}
