import { InvalidArgumentError } from 'commander';
import type { ResetTarget } from '../consumers/reset.js';

/** A message id as PostgreSQL prints a uuid (any case). */
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A date and time with its zone, as RFC 3339 writes it or as psql prints a timestamptz: `T` or a
 * space between date and time, seconds optional, a zone of `Z`, `±HH`, `±HHMM` or `±HH:MM`.
 */
const timePattern = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s?(Z|[+-]\d{2}(?::?\d{2})?)$/i;

const usage =
  'Expected earliest, latest, a time with its zone (such as 2025-11-10T09:00:00Z or 2025-11-10 09:00:00+01) or a message id (a UUID).';

function zoneOffsetMinutes(zone: string): number {
  if (zone.toUpperCase() === 'Z') return 0;
  const digits = zone.slice(1).replace(':', '');
  const minutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0');
  return zone.startsWith('-') ? -minutes : minutes;
}

function parseTime(text: string): Date | undefined {
  const match = timePattern.exec(text);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second = '0', fraction = '', zone = 'Z'] = match;
  if (/[1-9]/.test(fraction.slice(3))) {
    throw new InvalidArgumentError(`${text} is finer than a millisecond: give at most three decimals of a second.`);
  }
  const fields = [Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second)] as const;
  const local = new Date(Date.UTC(...fields, Number(fraction.slice(0, 3).padEnd(3, '0'))));
  const exact =
    local.getUTCFullYear() === fields[0] &&
    local.getUTCMonth() === fields[1] &&
    local.getUTCDate() === fields[2] &&
    local.getUTCHours() === fields[3] &&
    local.getUTCMinutes() === fields[4] &&
    local.getUTCSeconds() === fields[5];
  if (!exact || Math.abs(zoneOffsetMinutes(zone)) >= 24 * 60) throw new InvalidArgumentError(`${text} is not a real date and time.`);
  return new Date(local.getTime() - zoneOffsetMinutes(zone) * 60_000);
}

/** The value of `groups reset --to`: a keyword, a message id or a time, never two readings of one text. */
export function resetTarget(text: string): ResetTarget {
  const value = text.trim();
  if (value === 'earliest' || value === 'latest') return value;
  if (uuidPattern.test(value)) return { messageId: value.toLowerCase() };
  const time = parseTime(value);
  if (time) return { time };
  throw new InvalidArgumentError(usage);
}

/** The target as the report names it. */
export function describeResetTarget(to: ResetTarget): string {
  if (to === 'earliest' || to === 'latest') return to;
  return 'time' in to ? to.time.toISOString() : `message ${to.messageId}`;
}
