import type { Executor } from 'postbox';
import { countDeliveries, type DeliveryCount } from './delivery-count.js';
import { describeDurations } from './durations.js';
import { effectCounts, handledMessages } from './handled-messages.js';
import { KeySequenceCheck } from './key-sequence-check.js';

/** A schedule that ticks every `everyMs`, from its first tick to its last (the last appended before it was paused). */
export interface TickSpan {
  name: string;
  everyMs: number;
  firstTick: Date;
  lastTick: Date;
}

export interface TickCheck {
  /** Ticks that should be in the log. */
  expected: number;
  /** The ticks in the log against their effect rows. */
  count: DeliveryCount;
  /** Ticks due between the first and the last that are not in the log. */
  lost: number;
  /** Ticks in the log more than once. */
  doubled: number;
  violations: string[];
  notes: string[];
}

interface TickRow {
  message_id: string;
  schedule: string;
  scheduled_for: string;
  logged_ms: number;
}

/**
 * Checks a topic of schedule ticks: each tick of each schedule, from its first to its last, is in
 * the log exactly once and no other is; none entered the log or was handled before its time; and
 * each schedule's ticks were handled in their order (its ticks are its key's messages, numbered
 * 1, 2, 3... by their time, for the key-order check).
 */
export async function checkTicks(db: Executor, topic: string, spans: readonly TickSpan[]): Promise<TickCheck> {
  const violations: string[] = [];
  const { rows } = await db.query<TickRow>(
    `select message_id::text as message_id, headers ->> 'schedule' as schedule, headers ->> 'scheduledFor' as scheduled_for,
            (extract(epoch from created_at) * 1000)::float8 as logged_ms
     from postbox.messages where topic = $1`,
    [topic],
  );
  const bySchedule = new Map(spans.map((span) => [span.name, new Map<number, TickRow[]>()]));
  const foreign: string[] = [];
  for (const row of rows) {
    const ticks = bySchedule.get(row.schedule);
    if (!ticks) {
      foreign.push(row.message_id);
      continue;
    }
    const at = Date.parse(row.scheduled_for);
    ticks.set(at, [...(ticks.get(at) ?? []), row]);
  }
  if (foreign.length > 0) violations.push(`${foreign.length} messages on ${topic} belong to no schedule of the run`);

  let expected = 0;
  let lost = 0;
  let doubled = 0;
  const lostExamples: string[] = [];
  const sequenceOf = new Map<string, { schedule: string; sequence: number; dueMs: number }>();
  for (const span of spans) {
    const ticks = bySchedule.get(span.name) as Map<number, TickRow[]>;
    let sequence = 0;
    for (let at = span.firstTick.getTime(); at <= span.lastTick.getTime(); at += span.everyMs) {
      sequence += 1;
      expected += 1;
      const copies = ticks.get(at) ?? [];
      ticks.delete(at);
      if (copies.length === 0) {
        lost += 1;
        if (lostExamples.length < 5) lostExamples.push(`${span.name} at ${new Date(at).toISOString()}`);
      }
      doubled += Math.max(0, copies.length - 1);
      for (const copy of copies) sequenceOf.set(copy.message_id, { schedule: span.name, sequence, dueMs: at });
    }
    if (ticks.size > 0) violations.push(`${span.name}: ${ticks.size} ticks in the log outside its first to last tick`);
  }
  if (lost > 0) violations.push(`${lost} schedule ticks missing from the log, e.g. ${lostExamples.join(', ')}`);
  if (doubled > 0) violations.push(`${doubled} schedule ticks appended more than once`);

  const handled = await handledMessages(db, topic);
  const order = new KeySequenceCheck();
  const loggedLate: number[] = [];
  let early = 0;
  for (const message of handled) {
    const tick = sequenceOf.get(message.id);
    if (!tick) continue;
    order.see({ key: tick.schedule, sequence: tick.sequence, identity: message.id });
    loggedLate.push(message.loggedMs - tick.dueMs);
    if (message.loggedMs < tick.dueMs || message.handledMs < tick.dueMs) early += 1;
  }
  if (early > 0) violations.push(`${early} ticks entered the log or were handled before their time`);
  if (order.outOfOrder > 0)
    violations.push(`${order.outOfOrder} ticks handled out of their schedule's order (${order.orderExamples.join('; ')})`);
  const count = countDeliveries([...sequenceOf.keys()], effectCounts(handled));
  if (count.lost > 0) violations.push(`${count.lost} ticks in the log never handled, e.g. ${count.lostExamples.join(', ')}`);
  if (count.duplicated > 0) violations.push(`${count.duplicated} effect rows of ticks beyond the first`);
  return {
    expected,
    count,
    lost,
    doubled,
    violations,
    notes: [
      `ticks: ${spans.length} schedules every ${spans[0]?.everyMs ?? 0} ms, ${expected} ticks in all from each one's first to its last, ${lost} missing, ${doubled} appended twice; ` +
        describeDurations('from its time to the log', loggedLate),
    ],
  };
}
