import type { OutgoingMessage } from './outgoing-message.js';

/**
 * A small fluent builder for messages, for code written in the builder style:
 * `messageBuilder('order.created', order.id).topic('orders').userId(u).traceId(t).version(2).payload(p).build()`,
 * with `.deliverAt(date)` or `.delayMs(ms)` for a message that waits for its time.
 * The second argument is the partition key.
 */
export class MessageBuilder<P = unknown> {
  private readonly message: Partial<OutgoingMessage<P>> & { headers: Record<string, string> };

  constructor(type: string, key?: string) {
    this.message = { type, key: key ?? null, headers: {} };
  }

  topic(topic: string): this {
    this.message.topic = topic;
    return this;
  }

  partitionKey(key: string): this {
    this.message.key = key;
    return this;
  }

  payload<Q>(payload: Q): MessageBuilder<Q> {
    (this.message as Partial<OutgoingMessage<unknown>>).payload = payload;
    return this as unknown as MessageBuilder<Q>;
  }

  id(id: string): this {
    this.message.id = id;
    return this;
  }

  userId(userId: string): this {
    this.message.userId = userId;
    return this;
  }

  traceId(traceId: string): this {
    this.message.traceId = traceId;
    return this;
  }

  correlationId(correlationId: string): this {
    this.message.correlationId = correlationId;
    return this;
  }

  causationId(causationId: string): this {
    this.message.causationId = causationId;
    return this;
  }

  version(schemaVersion: number): this {
    this.message.schemaVersion = schemaVersion;
    return this;
  }

  /** Deliver no earlier than this time (see OutgoingMessage.deliverAt). */
  deliverAt(at: Date): this {
    this.message.deliverAt = at;
    return this;
  }

  /** Deliver no earlier than this many milliseconds after it is written (see OutgoingMessage.delayMs). */
  delayMs(ms: number): this {
    this.message.delayMs = ms;
    return this;
  }

  header(name: string, value: string): this {
    this.message.headers[name] = value;
    return this;
  }

  /** The message; enqueue validates it, so a missing topic or payload is reported there with its code. */
  build(): OutgoingMessage<P> {
    return { ...this.message, headers: { ...this.message.headers } } as OutgoingMessage<P>;
  }
}

export function messageBuilder(type: string, key?: string): MessageBuilder {
  return new MessageBuilder(type, key);
}
