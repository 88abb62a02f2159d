import { contextOf, inSpan, messagingSystem } from '../../observability/tracing.js';
import type { Middleware } from '../handler.js';

/**
 * A span for each message the chain handles, a child of the span that wrote the message (its
 * trace-context headers), so that one trace runs from the writer to this handler. Retries and
 * dead letters are events on it. Without OpenTelemetry it does nothing.
 */
export function trace(): Middleware {
  return (next) => (message, context) =>
    inSpan(
      `process ${message.topic}`,
      {
        kind: 'consumer',
        parent: contextOf(message.headers),
        attributes: {
          'messaging.system': message.source.kind === 'kafka' ? 'kafka' : messagingSystem,
          'messaging.operation.type': 'process',
          'messaging.destination.name': message.topic,
          'messaging.consumer.group.name': context.group,
          'messaging.message.id': message.id,
          'postbox.handler': context.handler,
        },
      },
      async (span) => {
        const outcome = await next(message, context);
        span?.setAttribute('postbox.outcome', outcome);
        return outcome;
      },
    );
}
