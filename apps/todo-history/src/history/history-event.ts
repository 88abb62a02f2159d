import type { RoutedMessage } from 'postbox';
import type { z } from 'zod';
import { readHistoryEvent } from './history-event-reader.js';
import { type HistoryEvent, historyEventSchema } from './history-event-schema.js';

export interface DecodedEvent {
  event: HistoryEvent;
  /** The event as it arrived, as JSON text: stored whole in event_data. */
  json: string;
}

export class UndecodableEvent extends Error {
  override readonly name = 'UndecodableEvent';
}

function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function issueText(issue: z.core.$ZodIssue, root: unknown): string {
  const path = issue.path.map(String).join('.');
  let input: unknown = root;
  for (const key of issue.path)
    input = input !== null && typeof input === 'object' ? (input as Record<PropertyKey, unknown>)[key] : undefined;
  if (input === undefined && (issue.code === 'invalid_type' || issue.code === 'invalid_value')) return `${path} is missing`;
  if (issue.code === 'invalid_type') {
    return `${path} must be ${issue.expected === 'object' ? 'an object' : `a ${issue.expected}`} (got ${describeJson(input)})`;
  }
  if (issue.code === 'invalid_value') {
    return `${path} must be one of ${issue.values.map(String).join(', ')} (got ${JSON.stringify(input)?.slice(0, 100)})`;
  }
  return `${path} ${issue.message}`;
}

/**
 * Checks one message against the todo-history event format. A payload that is a JSON string is
 * read as the event's JSON text (producers that encode twice). Throws an UndecodableEvent saying
 * what is wrong: the router then sends the message to dead letters at once and the stream goes on.
 */
export function decodeHistoryEvent(message: RoutedMessage, maxEventBytes: number): DecodedEvent {
  let body: unknown = message.payload;
  if (typeof body === 'string') {
    const bytes = Buffer.byteLength(body);
    if (bytes > maxEventBytes) throw new UndecodableEvent(`event is ${bytes} bytes, over the limit of ${maxEventBytes}`);
    try {
      body = JSON.parse(body);
    } catch (error) {
      throw new UndecodableEvent(`event is not valid JSON: ${(error as Error).message}`);
    }
  }
  const json = JSON.stringify(body) ?? '';
  const bytes = Buffer.byteLength(json);
  if (bytes > maxEventBytes) throw new UndecodableEvent(`event is ${bytes} bytes, over the limit of ${maxEventBytes}`);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new UndecodableEvent(`event must be a JSON object (got ${describeJson(body)})`);
  }
  const event = readHistoryEvent(body as Record<string, unknown>);
  if (event) return { event, json };
  const result = historyEventSchema.safeParse(body);
  if (!result.success) {
    const reasons = result.error.issues.slice(0, 3).map((issue) => issueText(issue, body));
    throw new UndecodableEvent(`event does not match the todo-history event format: ${reasons.join('; ')}`);
  }
  return { event: result.data, json };
}

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|[+-]\d{2}:\d{2})$/;
/** What Date#toISOString writes, years 1000 to 9999: the form almost every event carries. */
const isoMillis = /^[1-9]\d{3}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const digits = (text: string, from: number, to: number) => Number(text.slice(from, to));

/** True when an isoMillis text names a real instant: a day of its month, 00:00:00 to 23:59:59. */
function isRealInstant(text: string): boolean {
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 7);
  const day = digits(text, 8, 10);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const daysInMonth = month === 2 ? (leap ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
  return (
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth &&
    digits(text, 11, 13) <= 23 &&
    digits(text, 14, 16) <= 59 &&
    digits(text, 17, 19) <= 59
  );
}

/**
 * An RFC 3339 timestamp as a canonical UTC string with microseconds, or undefined when it is
 * missing, not a string, or names no real instant (2025-02-30, 25:00...).
 */
export function readTimestamp(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  // Already UTC with milliseconds: the long way below would give the same answer.
  if (isoMillis.test(value) && isRealInstant(value)) return `${value.slice(0, 23)}000Z`;
  const match = rfc3339.exec(value);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second, fraction = ''] = match;
  const calendar = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second)));
  if (
    calendar.getUTCFullYear() !== Number(year) ||
    calendar.getUTCMonth() !== Number(month) - 1 ||
    calendar.getUTCDate() !== Number(day) ||
    calendar.getUTCHours() !== Number(hour) ||
    calendar.getUTCMinutes() !== Number(minute) ||
    calendar.getUTCSeconds() !== Number(second)
  ) {
    return undefined;
  }
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) return undefined;
  const utc = new Date(ms);
  if (utc.getUTCFullYear() < 1000 || utc.getUTCFullYear() > 9999) return undefined;
  const micros = fraction.padEnd(6, '0').slice(3, 6);
  return `${utc.toISOString().slice(0, 23)}${micros}Z`;
}
