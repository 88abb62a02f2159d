import type { OutgoingMessage } from '../../outbox/outgoing-message.js';
import type { Middleware } from '../handler.js';

/**
 * Carries ids onto every message a handler publishes: the correlation id of the handled message
 * (or its id when it had none), its id as the causation id, and its trace id.
 */
export function correlation(): Middleware {
  return (next) => async (message, context) => {
    const correlationId = typeof message.headers.correlationId === 'string' ? message.headers.correlationId : message.id;
    const traceId = typeof message.headers.traceId === 'string' ? message.headers.traceId : undefined;
    const stamp = (outgoing: OutgoingMessage): OutgoingMessage => ({
      ...outgoing,
      correlationId: outgoing.correlationId ?? correlationId,
      causationId: outgoing.causationId ?? message.id,
      traceId: outgoing.traceId ?? traceId,
    });
    return next(message, {
      ...context,
      publish: (messages) =>
        context.publish(Array.isArray(messages) ? (messages as readonly OutgoingMessage[]).map(stamp) : stamp(messages as OutgoingMessage)),
    });
  };
}
