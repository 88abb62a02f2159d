import type { Attributes } from '@opentelemetry/api';
import { messagingSystem } from '../observability/tracing.js';

interface Destined {
  topic: string;
}

/** `send <topic>`, after OpenTelemetry's messaging conventions; `send` alone for several topics. */
export function producerSpanName(messages: readonly Destined[]): string {
  const topic = messages[0]?.topic;
  return typeof topic === 'string' && messages.every((message) => message.topic === topic) ? `send ${topic}` : 'send';
}

/** The attributes of a producer span of the outbox, after OpenTelemetry's messaging conventions. */
export function producerAttributes(messages: readonly Destined[]): Attributes {
  const attributes: Attributes = {
    'messaging.system': messagingSystem,
    'messaging.operation.type': 'send',
    'messaging.operation.name': 'enqueue',
  };
  const topic = messages[0]?.topic;
  if (typeof topic === 'string' && messages.every((message) => message.topic === topic)) attributes['messaging.destination.name'] = topic;
  if (messages.length !== 1) attributes['messaging.batch.message_count'] = messages.length;
  return attributes;
}
