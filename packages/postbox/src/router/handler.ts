import type { Logger } from '../observability/logger.js';
import type { OutgoingMessage } from '../outbox/outgoing-message.js';
import type { Executor } from '../sql/database.js';
import type { RoutedMessage } from './routed-message.js';

export interface HandlerContext {
  group: string;
  handler: string;
  /** The batch's transaction in transactional mode: writes on it commit with the checkpoint. */
  tx: Executor | undefined;
  /** The log partition of the message's batch (0 in a group of one partition); undefined on Kafka. */
  partition: number | undefined;
  /** Aborted on timeout, on a passed stop deadline, or when the group's lease is lost. */
  signal: AbortSignal;
  /** 1 for the first attempt. */
  attempt: number;
  logger: Logger;
  /** Publishes follow-up messages through the outbox, in the batch's transaction when there is one. */
  publish(messages: OutgoingMessage | readonly OutgoingMessage[]): Promise<string[]>;
}

export type Handler<P = unknown> = (message: RoutedMessage<P>, context: HandlerContext) => Promise<void>;

/** What the chain did with a message, for metrics and logs. `parked`: it waits for a later attempt (a route's `park`). */
export type Outcome = 'handled' | 'dead_lettered' | 'duplicate' | 'parked';

export type OutcomeHandler = (message: RoutedMessage, context: HandlerContext) => Promise<Outcome>;

/** Wraps the rest of the chain. Middleware are applied in the order documented in compose.ts. */
export type Middleware = (next: OutcomeHandler) => OutcomeHandler;
