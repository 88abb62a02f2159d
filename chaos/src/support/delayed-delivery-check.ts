import type { Executor } from 'postbox';
import { countDeliveries, type DeliveryCount } from './delivery-count.js';
import { describeDurations } from './durations.js';
import { effectCounts, handledMessages } from './handled-messages.js';
import { cancelledIds } from './scheduled-canceller.js';
import { producedIds } from './steady-producer.js';

export interface DelayedCheck {
  /** Against the messages whose write committed and whose cancel did not. */
  count: DeliveryCount;
  violations: string[];
  notes: string[];
}

/** The payload the scenario gives a delayed message: its due time, as it asked for it. */
export interface DelayedPayload {
  sequence: number;
  due: string;
}

/**
 * Checks a topic of delayed messages from its sinks: every message whose write committed
 * (chaos_orders) and whose cancel did not (chaos_cancelled) has exactly one effect row; no cancelled
 * message is in the log; none entered the log or was handled before its due time; none is still waiting.
 */
export async function checkDelayed(db: Executor, topic: string): Promise<DelayedCheck> {
  const violations: string[] = [];
  const cancelled = new Set(await cancelledIds(db));
  const expected = (await producedIds(db, topic)).filter((id) => !cancelled.has(id));
  const handled = await handledMessages(db, topic);
  const count = countDeliveries(expected, effectCounts(handled));
  if (count.lost > 0) violations.push(`${count.lost} delayed messages never handled, e.g. ${count.lostExamples.join(', ')}`);
  if (count.duplicated > 0) violations.push(`${count.duplicated} effect rows of delayed messages beyond the first`);

  const { rows } = await db.query<{ in_log: number; waiting: number }>(
    `select (select count(*)::int from postbox.messages where topic = $1 and message_id = any($2::uuid[])) as in_log,
            (select count(*)::int from postbox.scheduled_messages where topic = $1) as waiting`,
    [topic, [...cancelled]],
  );
  const inLog = Number(rows[0]?.in_log ?? 0);
  const waiting = Number(rows[0]?.waiting ?? 0);
  if (inLog > 0) violations.push(`${inLog} cancelled messages entered the log`);
  if (count.unexpected > 0) violations.push(`${count.unexpected} handled delayed messages were never committed or were cancelled`);
  if (waiting > 0) violations.push(`${waiting} delayed messages still wait after the end`);

  const loggedLate: number[] = [];
  const handledAfterLogged: number[] = [];
  const early: string[] = [];
  for (const message of handled) {
    const dueMs = Date.parse((message.payload as DelayedPayload).due);
    loggedLate.push(message.loggedMs - dueMs);
    handledAfterLogged.push(message.handledMs - message.loggedMs);
    if (message.loggedMs < dueMs || message.handledMs < dueMs) {
      early.push(
        `${message.id} due ${new Date(dueMs).toISOString()}, logged ${(message.loggedMs - dueMs).toFixed(1)} ms and handled ${(message.handledMs - dueMs).toFixed(1)} ms after`,
      );
    }
  }
  if (early.length > 0)
    violations.push(`${early.length} delayed messages entered the log or were handled before their time: ${early.slice(0, 3).join('; ')}`);
  return {
    count,
    violations,
    notes: [
      `delayed: ${describeDurations('from due to the log (the timekeeper)', loggedLate)}; ` +
        describeDurations('from the log to handled (the group, its kills and parked keys included)', handledAfterLogged),
    ],
  };
}
