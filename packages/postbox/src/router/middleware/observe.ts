import type { PostboxMetrics } from '../../observability/metrics.js';
import type { Middleware, Outcome } from '../handler.js';

/**
 * The outermost middleware: a logger child carrying the message's ids, and metrics of the
 * outcome and duration. Kafka messages also count under the seed's kafka_* names.
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
