import { defaults } from '../config/defaults.js';
import { appendToLog } from '../log/append.js';
import { asExecutor, type CallerTransaction, type Executor } from '../sql/database.js';
import type { OutgoingMessage } from './outgoing-message.js';
import { prepareMessage, type ValidationLimits } from './validate.js';

/**
 * Writes messages to the outbox inside the caller's open transaction: they exist if and only if
 * that transaction commits. Every message is validated before anything is written.
 * Returns the message ids in input order.
 */
export async function enqueue(
  tx: CallerTransaction | Executor,
  messages: OutgoingMessage | readonly OutgoingMessage[],
  limits: ValidationLimits = { payloadLimitBytes: defaults.payloadLimitBytes },
): Promise<string[]> {
  const list = Array.isArray(messages) ? (messages as readonly OutgoingMessage[]) : [messages as OutgoingMessage];
  const prepared = list.map((message) => prepareMessage(message, limits));
  await appendToLog(asExecutor(tx), prepared);
  return prepared.map((message) => message.id);
}
