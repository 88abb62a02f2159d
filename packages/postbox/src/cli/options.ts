import { InvalidArgumentError } from 'commander';
import { parseDuration } from '../config/duration.js';

export function positiveInteger(text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidArgumentError('Expected a positive integer.');
  }
  return value;
}

/** A positive duration with a unit, such as 30m, 24h or 7d, in milliseconds. */
export function duration(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) throw new InvalidArgumentError('Expected a positive duration with a unit, such as 90s, 24h or 7d.');
  return ms;
}

/** Seconds as a plain number (`5`, `0.5`) or a duration (`500ms`, `2m`), in milliseconds; zero is allowed. */
export function seconds(text: string): number {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1_000);
  const ms = parseDuration(trimmed);
  if (ms === undefined) throw new InvalidArgumentError('Expected seconds, such as 5 or 0.5, or a duration such as 500ms or 2m.');
  return ms;
}

export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `name=value`; the value may itself contain `=`. */
export function header(value: string, previous: [string, string][] | undefined): [string, string][] {
  const at = value.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError('Expected name=value.');
  return [...(previous ?? []), [value.slice(0, at), value.slice(at + 1)]];
}

/** A time with its zone, such as 2025-11-10T09:00:00Z or 2025-11-10T10:00:00+01:00. */
export function timeWithZone(text: string): Date {
  const at = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:?\d{2})$/i.test(text.trim()) || Number.isNaN(at.getTime())) {
    throw new InvalidArgumentError('Expected a time with its zone, such as 2025-11-10T09:00:00Z.');
  }
  return at;
}
