import type { LogMessage } from '../../log/message.js';
import { contextOf, inSpan } from '../../observability/tracing.js';

/**
 * The span of one send of the relay to Kafka, a child of the span of handling the batch (itself a
 * child of the writer's span for one message); with several messages, also linked to each writer's.
 * The messages keep their own trace-context headers on Kafka, so that the consumer there continues
 * the writer's trace.
 */
export function inRelaySendSpan<T>(kafkaTopic: string | undefined, messages: readonly LogMessage[], send: () => Promise<T>): Promise<T> {
  const links = messages.length > 1 ? messages.map((message) => contextOf(message.headers)).filter((context) => context !== undefined) : [];
  return inSpan(
    kafkaTopic ? `send ${kafkaTopic}` : 'send',
    {
      kind: 'producer',
      links,
      attributes: {
        'messaging.system': 'kafka',
        'messaging.operation.type': 'send',
        ...(kafkaTopic ? { 'messaging.destination.name': kafkaTopic } : {}),
        'messaging.batch.message_count': messages.length,
        'postbox.relay': true,
      },
    },
    send,
  );
}
