import type { CallerTransaction, Executor } from '../sql/database.js';
import type { OutgoingMessage } from './outgoing-message.js';

/**
 * The outbox as handlers and transports use it, with the payload limit of the Postbox that runs
 * them. Postbox is one.
 */
export interface OutboxWriter {
  readonly payloadLimitBytes: number;
  /** Writes messages inside the caller's open transaction. */
  enqueue(tx: CallerTransaction | Executor, messages: OutgoingMessage | readonly OutgoingMessage[]): Promise<string[]>;
  /** Writes messages in a transaction of their own. */
  publish(messages: OutgoingMessage | readonly OutgoingMessage[]): Promise<string[]>;
}
