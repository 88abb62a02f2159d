import { Cron } from 'croner';
import { ValidationError } from '../errors/postbox-error.js';

/**
 * A cron expression read in an IANA time zone, through croner: five fields (minute to day of week),
 * six with seconds first, or a nickname such as `@daily`. Daylight saving time follows Vixie cron: a
 * job at one fixed time runs once when the clock falls back and right after the gap when it springs
 * forward; a job with a wildcard, step, range or list in its time fields runs at both passes of a
 * repeated hour and skips the times a gap removes.
 */
export interface CronTicks {
  readonly cron: string;
  readonly timeZone: string;
  /** The first tick strictly after `after`; null when the expression has no tick left. */
  next(after: Date): Date | null;
  /** Up to `count` ticks at or before `atOrBefore`, the latest first. */
  latest(count: number, atOrBefore: Date): Date[];
}

function badSchedule(field: 'cron' | 'timeZone', message: string): ValidationError {
  return new ValidationError('POSTBOX_ERR_BAD_SCHEDULE', message, { field });
}

function checkTimeZone(timeZone: unknown): string {
  if (typeof timeZone !== 'string' || timeZone.trim() === '') {
    throw badSchedule(
      'timeZone',
      `timeZone must be an IANA time zone name such as Europe/Berlin (got ${JSON.stringify(timeZone) ?? typeof timeZone}).`,
    );
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    throw badSchedule(
      'timeZone',
      `timeZone ${JSON.stringify(timeZone.slice(0, 60))} is not a time zone this runtime knows; use an IANA name such as Europe/Berlin.`,
    );
  }
  return timeZone;
}

/** Fields separated by spaces, or a nickname: croner would also take an ISO date as a one-off, which a schedule is not. */
const cronShape = /^(@\w+|\S+(\s+\S+){4,6})$/;

/** Compiles a schedule's expression in its time zone; a ValidationError names the field that is wrong. */
export function cronTicks(cron: unknown, timeZone: unknown): CronTicks {
  const zone = checkTimeZone(timeZone);
  if (typeof cron !== 'string' || !cronShape.test(cron.trim())) {
    throw badSchedule(
      'cron',
      `cron must be a cron expression of 5 or 6 fields, such as "0 9 * * MON-FRI" (got ${JSON.stringify(String(cron).slice(0, 60))}).`,
    );
  }
  let compiled: Cron;
  try {
    compiled = new Cron(cron.trim(), { timezone: zone });
  } catch (error) {
    throw badSchedule('cron', `cron ${JSON.stringify(cron.slice(0, 60))} is not a valid expression: ${(error as Error).message}`);
  }
  return {
    cron: cron.trim(),
    timeZone: zone,
    next: (after) => compiled.nextRun(after),
    // croner's previous runs are strictly before their reference; ticks fall on whole seconds.
    latest: (count, atOrBefore) => compiled.previousRuns(count, new Date(atOrBefore.getTime() + 1)),
  };
}
