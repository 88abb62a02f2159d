import { defaults } from '../config/defaults.js';
import { ValidationError } from '../errors/postbox-error.js';
import { type AppendRow, appendMessages } from '../log/append.js';
import { inSpan, traceHeaders } from '../observability/tracing.js';
import { asExecutor, type CallerTransaction, type Executor } from '../sql/database.js';
import { deliveryTimeOf } from '../time/delivery-time.js';
import { type ScheduledRow, writeScheduled } from '../time/scheduled-messages.js';
import type { OutgoingMessage } from './outgoing-message.js';
import { producerAttributes, producerSpanName } from './producer-span.js';
import { prepareMessage, type ValidationLimits } from './validate.js';

/**
 * Writes messages to the outbox inside the caller's open transaction: they exist if and only if
 * that transaction commits. Every message is validated before anything is written.
 * Returns the message ids in input order.
 *
 * A message with deliverAt or delayMs waits instead (see deliveryTimeOf): it enters the log when the
 * timekeeper moves it, after every message committed before that moment, with the same id.
 */
export async function enqueue(
  tx: CallerTransaction | Executor,
  messages: OutgoingMessage | readonly OutgoingMessage[],
  limits: ValidationLimits = { payloadLimitBytes: defaults.payloadLimitBytes },
): Promise<string[]> {
  const list = Array.isArray(messages) ? (messages as readonly OutgoingMessage[]) : [messages as OutgoingMessage];
  return inSpan(producerSpanName(list), { kind: 'producer', attributes: producerAttributes(list) }, async (span) => {
    // Each message carries the producer span's context, for the spans that will handle it.
    const trace = traceHeaders();
    const prepared = list.map((message) => prepareMessage(message, limits, trace));
    const times = list.map((message) => deliveryTimeOf(message));
    if (prepared.length === 1) span?.setAttribute('messaging.message.id', (prepared[0] as AppendRow).id);
    const now: AppendRow[] = [];
    const later: ScheduledRow[] = [];
    prepared.forEach((row, index) => {
      const time = times[index];
      if (time) later.push({ ...row, time });
      else now.push(row);
    });
    try {
      const executor = asExecutor(tx);
      await appendMessages(executor, now);
      await writeScheduled(executor, later);
    } catch (error) {
      throw duplicateIdError(error, prepared) ?? error;
    }
    return prepared.map((message) => message.id);
  });
}

/** A caller-chosen id that is already in the log (or twice in the batch) is bad input, not a database failure. */
function duplicateIdError(error: unknown, prepared: readonly AppendRow[]): ValidationError | undefined {
  const { code, constraint, detail } = error as { code?: unknown; constraint?: unknown; detail?: unknown };
  if (code !== '23505' || (constraint !== 'messages_message_id_key' && constraint !== 'scheduled_messages_pkey')) return undefined;
  const ids = prepared.map((message) => message.id);
  const repeated = ids.find((candidate, index) => ids.indexOf(candidate) !== index);
  const id = repeated ?? /\(message_id\)=\(([^)]+)\)/.exec(String(detail))?.[1];
  const holder =
    constraint === 'scheduled_messages_pkey'
      ? 'A scheduled message waiting for its time already has'
      : 'The log already holds a message with';
  const where = repeated ? `The batch holds id ${repeated} twice` : `${holder} id ${id ?? 'of one of these'}`;
  return new ValidationError(
    'POSTBOX_ERR_DUPLICATE_ID',
    `${where}; give each message a new id, or leave id unset. Nothing was written; roll the transaction back.`,
    { id },
    { cause: error },
  );
}
