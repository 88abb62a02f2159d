import { context, propagation, type SpanContext, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';

export interface RecordedTraces {
  exporter: InMemorySpanExporter;
  /** Finished spans with this name. */
  named(name: string): ReadableSpan[];
  /** The one finished span whose attributes hold all of these. */
  one(name: string, attributes: Record<string, unknown>): ReadableSpan;
}

/** The OpenTelemetry SDK as an application registers it, exporting to memory: W3C propagation and async context. */
export function recordTraces(): RecordedTraces {
  const exporter = new InMemorySpanExporter();
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }));
  const named = (name: string) => exporter.getFinishedSpans().filter((span) => span.name === name);
  return {
    exporter,
    named,
    one(name, attributes) {
      const found = named(name).filter((span) => Object.entries(attributes).every(([key, value]) => span.attributes[key] === value));
      if (found.length !== 1) throw new Error(`expected one span ${name} with ${JSON.stringify(attributes)}, found ${found.length}`);
      return found[0] as ReadableSpan;
    },
  };
}

/** The W3C traceparent of a span context, as a message header carries it. */
export function traceparentOf(spanContext: SpanContext): string {
  return `00-${spanContext.traceId}-${spanContext.spanId}-0${spanContext.traceFlags}`;
}
