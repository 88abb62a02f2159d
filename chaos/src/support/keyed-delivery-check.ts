import type { Executor } from 'postbox';
import { countDeliveries, type DeliveryCount } from './delivery-count.js';
import { effectCounts, handledMessages } from './handled-messages.js';
import { KeySequenceCheck } from './key-sequence-check.js';

export interface KeyedCheck {
  /** The topic's messages in the log against their effect rows. */
  count: DeliveryCount;
  order: KeySequenceCheck;
  violations: string[];
}

/**
 * Checks a topic written by processes/ordered-writers.ts: the log holds what the writers committed
 * (`committed`: each key's number of messages), each of those messages has exactly one effect row,
 * and each key's messages were handled in their order (payload.sequence 1, 2, 3...).
 */
export async function checkKeyedDelivery(db: Executor, topic: string, committed: ReadonlyMap<string, number>): Promise<KeyedCheck> {
  const violations: string[] = [];
  const { rows } = await db.query<{ id: string }>('select message_id::text as id from postbox.messages where topic = $1', [topic]);
  const committedTotal = [...committed.values()].reduce((sum, count) => sum + count, 0);
  if (committedTotal !== rows.length)
    violations.push(`the log holds ${rows.length} messages on ${topic}, the writers committed ${committedTotal}`);
  const handled = await handledMessages(db, topic);
  const count = countDeliveries(
    rows.map((row) => row.id),
    effectCounts(handled),
  );
  if (count.lost > 0) violations.push(`${count.lost} messages on ${topic} have no effect row, e.g. ${count.lostExamples.join(', ')}`);
  if (count.duplicated > 0) violations.push(`${count.duplicated} effect rows on ${topic} beyond the first of their message`);
  const order = new KeySequenceCheck();
  for (const message of handled) {
    order.see({ key: message.key as string, sequence: (message.payload as { sequence: number }).sequence, identity: message.id });
  }
  if (order.outOfOrder > 0)
    violations.push(`${order.outOfOrder} messages handled out of their key's order (${order.orderExamples.join('; ')})`);
  const missing = order.missing(committed);
  if (missing.lost + missing.unexpected > 0) violations.push(`key sequences: ${missing.examples.join('; ')}`);
  return { count, order, violations };
}
