import { ValidationError } from '../errors/postbox-error.js';

/** When a scheduled message falls due: a moment, or a delay after the server's clock as it is written. */
export type DeliveryTime = { at: Date } | { delayMs: number };

/** What a message may say about its time. */
export interface Timed {
  deliverAt?: Date;
  delayMs?: number;
}

/** The years 1 to 9999: a time outside them is surely a mistake, and has no plain ISO 8601 form to send. */
const earliestTime = Date.parse('0001-01-01T00:00:00.000Z');
const latestTime = Date.parse('9999-12-31T23:59:59.999Z');

function badTime(message: string, field: 'deliverAt' | 'delayMs'): ValidationError {
  return new ValidationError('POSTBOX_ERR_BAD_DELIVERY_TIME', message, { field });
}

/**
 * The message's delivery time, checked; undefined for a message to deliver now. A time already
 * past is allowed (the message falls due at once), as is a delay of 0: both still pass through the
 * timekeeper, so the message enters the log when it moves, not with the transaction that wrote it.
 */
export function deliveryTimeOf(message: Timed): DeliveryTime | undefined {
  const { deliverAt, delayMs } = message;
  const hasAt = deliverAt !== undefined && deliverAt !== null;
  const hasDelay = delayMs !== undefined && delayMs !== null;
  if (hasAt && hasDelay) {
    throw badTime('Give deliverAt or delayMs, not both: one message has one delivery time.', 'deliverAt');
  }
  if (hasAt) {
    if (!(deliverAt instanceof Date) || Number.isNaN(deliverAt.getTime())) {
      throw badTime(`deliverAt must be a valid Date (got ${describe(deliverAt)}).`, 'deliverAt');
    }
    if (deliverAt.getTime() < earliestTime || deliverAt.getTime() > latestTime) {
      throw badTime(`deliverAt must be a time in the years 1 to 9999 (got ${deliverAt.toISOString()}).`, 'deliverAt');
    }
    return { at: deliverAt };
  }
  if (hasDelay) {
    if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0 || delayMs > Number.MAX_SAFE_INTEGER) {
      throw badTime(`delayMs must be a number of milliseconds from 0 (got ${describe(delayMs)}).`, 'delayMs');
    }
    return { delayMs };
  }
  return undefined;
}

function describe(value: unknown): string {
  if (value instanceof Date) return 'an invalid Date';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 60));
  return typeof value;
}

/** The delivery time as the members postbox.schedule_messages reads beside a message. */
export function deliveryTimeJson(time: DeliveryTime): string {
  return 'at' in time ? `"due_at":"${time.at.toISOString()}"` : `"delay_ms":${time.delayMs}`;
}
