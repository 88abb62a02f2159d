import type { PostboxMetrics } from '../../observability/metrics.js';
import type { HandlerContext, Middleware, Outcome } from '../handler.js';
import type { RoutedMessage } from '../routed-message.js';

/**
 * The outermost middleware: a logger child carrying the message's ids, and metrics of the
 * outcome and duration. Kafka messages also count under the kafka_* names.
 */
export function observe(metrics: PostboxMetrics | undefined): Middleware {
  return (next) => async (message, context) => {
    const logger = context.logger.child({
      messageId: message.id,
      topic: message.topic,
      type: message.type,
      traceId: message.headers.traceId,
      correlationId: message.headers.correlationId,
    });
    const started = process.hrtime.bigint();
    let outcome: Outcome | 'failed' = 'failed';
    try {
      outcome = await next(message, { ...context, logger });
      logger.debug({ outcome }, 'message done');
      return outcome;
    } finally {
      if (metrics) {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const labels = { group: context.group, handler: context.handler, outcome };
        metrics.messagesHandled.inc(labels);
        metrics.handlerDuration.observe(labels, seconds);
        if (message.source.kind === 'kafka') {
          metrics.kafkaEventsProcessed.inc({ topic: message.topic, status: outcome });
          metrics.kafkaEventProcessingDuration.observe({ topic: message.topic }, seconds);
          if (outcome === 'dead_lettered') metrics.kafkaEventsErrors.inc({ type: message.decodeError ? 'decode' : 'handler' });
        }
      }
    }
  };
}

/** Records messages a batch handler took whole, which bypass the per-message chain. */
export function recordBatchHandled(
  metrics: PostboxMetrics | undefined,
  context: HandlerContext,
  messages: readonly RoutedMessage[],
  seconds: number,
): void {
  if (!metrics || messages.length === 0) return;
  const labels = { group: context.group, handler: context.handler, outcome: 'handled' as const };
  metrics.messagesHandled.inc(labels, messages.length);
  metrics.handlerDuration.observe(labels, seconds);
  for (const message of messages) {
    if (message.source.kind !== 'kafka') continue;
    metrics.kafkaEventsProcessed.inc({ topic: message.topic, status: 'handled' });
    metrics.kafkaEventProcessingDuration.observe({ topic: message.topic }, seconds / messages.length);
  }
}

/** Counts each failed attempt; sits inside retry so every attempt is seen. */
export function countFailures(metrics: PostboxMetrics | undefined): Middleware {
  return (next) => async (message, context) => {
    try {
      return await next(message, context);
    } catch (error) {
      metrics?.handlerErrors.inc({ group: context.group, handler: context.handler });
      throw error;
    }
  };
}
