import type * as OpenTelemetry from '@opentelemetry/api';

/**
 * OpenTelemetry, when the application has it: `@opentelemetry/api` is an optional peer. Without
 * it, or without an SDK registered, every function here does nothing (the API's tracer is then a
 * no-op), and no header is written.
 */
const api: typeof OpenTelemetry | undefined = await import('@opentelemetry/api').then(
  (module) => module,
  () => undefined,
);

/** The W3C trace-context headers carried on messages, on the log and on Kafka. */
export const traceHeaderNames = ['traceparent', 'tracestate'] as const;

/** The messaging system as spans name it. */
export const messagingSystem = 'postbox';

type Headers = Readonly<Record<string, string | number | undefined>>;

const getter: OpenTelemetry.TextMapGetter<Headers> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    return typeof value === 'string' ? value : undefined;
  },
};

function tracer(): OpenTelemetry.Tracer | undefined {
  return api?.trace.getTracer('postbox');
}

export interface SpanOptions {
  kind: 'producer' | 'consumer' | 'client';
  attributes: OpenTelemetry.Attributes;
  /** The span's parent; the active context by default. */
  parent?: OpenTelemetry.Context;
  /** Other contexts the span relates to, e.g. the producers of a batch. */
  links?: readonly OpenTelemetry.Context[];
}

/**
 * Runs fn in a new span, active for its duration; the span ends when fn settles, with the error
 * recorded if it throws. fn gets the span (undefined without OpenTelemetry).
 */
export async function inSpan<T>(name: string, options: SpanOptions, fn: (span: OpenTelemetry.Span | undefined) => Promise<T>): Promise<T> {
  const otel = api;
  const found = tracer();
  if (!otel || !found) return fn(undefined);
  const kind = { producer: otel.SpanKind.PRODUCER, consumer: otel.SpanKind.CONSUMER, client: otel.SpanKind.CLIENT }[options.kind];
  const parent = options.parent ?? otel.context.active();
  const links = (options.links ?? [])
    .map((context) => otel.trace.getSpanContext(context))
    .filter((spanContext): spanContext is OpenTelemetry.SpanContext => spanContext !== undefined && otel.isSpanContextValid(spanContext))
    .map((spanContext) => ({ context: spanContext }));
  const span = found.startSpan(name, { kind, attributes: options.attributes, links }, parent);
  if (!span.isRecording()) {
    // No SDK, or a sampler that dropped it: nothing to record, and no context worth making active.
    span.end();
    return fn(undefined);
  }
  try {
    return await otel.context.with(otel.trace.setSpan(parent, span), () => fn(span));
  } catch (error) {
    recordError(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** Starts a span that the caller ends, not made active: for several messages handled together. */
export function startSpan(name: string, options: SpanOptions): OpenTelemetry.Span | undefined {
  const otel = api;
  const found = tracer();
  if (!otel || !found) return undefined;
  const kind = { producer: otel.SpanKind.PRODUCER, consumer: otel.SpanKind.CONSUMER, client: otel.SpanKind.CLIENT }[options.kind];
  return found.startSpan(name, { kind, attributes: options.attributes }, options.parent ?? otel.context.active());
}

/** Marks the span failed with the error. */
export function recordError(span: OpenTelemetry.Span | undefined, error: unknown): void {
  if (!span || !api) return;
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: api.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}

/** The trace-context headers of the active context (in a producer span, that span's), to write on a message. */
export function traceHeaders(): Record<string, string> {
  const carrier: Record<string, string> = {};
  api?.propagation.inject(api.context.active(), carrier);
  return carrier;
}

/** The context a message's trace-context headers carry, for the span that handles it. */
export function contextOf(headers: Headers): OpenTelemetry.Context | undefined {
  if (!api || typeof headers.traceparent !== 'string') return undefined;
  return api.propagation.extract(api.ROOT_CONTEXT, headers, getter);
}

/** Adds an event to the active span (a retry, a dead letter, a parked message), with the error if any. */
export function spanEvent(name: string, attributes: OpenTelemetry.Attributes, error?: unknown): void {
  const span = api?.trace.getActiveSpan();
  if (!span) return;
  span.addEvent(name, attributes);
  if (error !== undefined) span.recordException(error instanceof Error ? error : String(error));
}

/** Runs fn with the span active, so that spanEvent and nested spans find it. */
export function withSpan<T>(span: OpenTelemetry.Span | undefined, fn: () => T): T {
  if (!span || !api) return fn();
  return api.context.with(api.trace.setSpan(api.context.active(), span), fn);
}

/**
 * Runs fn in the span of handling messages: with one message, a child of the span that wrote it, so
 * that one trace runs from the writer to the handler; with several, a span linked to each writer's.
 */
export function inProcessSpan<T>(
  name: string,
  attributes: OpenTelemetry.Attributes,
  messages: readonly { headers: Headers }[],
  fn: (span: OpenTelemetry.Span | undefined) => Promise<T>,
): Promise<T> {
  if (!api) return fn(undefined);
  const contexts = messages.map((message) => contextOf(message.headers)).filter((context) => context !== undefined);
  const single = messages.length === 1 ? contexts[0] : undefined;
  return inSpan(
    name,
    {
      kind: 'consumer',
      attributes: messages.length === 1 ? attributes : { ...attributes, 'messaging.batch.message_count': messages.length },
      parent: single ?? api.context.active(),
      links: single ? [] : contexts,
    },
    fn,
  );
}

/** Marks the active span failed (a dead letter, say), with the error. */
export function failActiveSpan(error: unknown): void {
  recordError(api?.trace.getActiveSpan(), error);
}
