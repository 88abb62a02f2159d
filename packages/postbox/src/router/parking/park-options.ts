import { defaults } from '../../config/defaults.js';
import { ValidationError } from '../../errors/postbox-error.js';

/** What becomes of the later messages of a key whose parked message went to dead letters. */
export type OnDeadLetter = 'release' | 'hold';

/**
 * A route's parking: after its quick attempts in process, a failing message leaves its batch and
 * is attempted again later, with a growing delay, while the later messages of its key wait behind it
 * and every other key goes on. Each option defaults to defaults.router.park.
 */
export interface ParkOptions {
  /** Delay before the first attempt from parking; each further one waits `multiplier` times longer, up to maxDelayMs. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  multiplier?: number;
  /** 0 to 1: the share of each delay that is randomised. */
  jitter?: number;
  /** Attempts from parking before the message goes to dead letters; null for no limit (then maxAgeMs must be set). */
  maxAttempts?: number | null;
  /** Time since its first failure after which the message goes to dead letters; null for no limit. The last attempt is made at that age. */
  maxAgeMs?: number | null;
  /**
   * Once the message went to dead letters: `release` handles the later messages of its key at once,
   * in order; `hold` keeps them parked until that dead letter is retried (they follow it once it is
   * handled) or discarded.
   */
  onDeadLetter?: OnDeadLetter;
  /** Parked messages a partition handles between two of its batches. */
  batchSize?: number;
}

export type ResolvedParkOptions = Required<ParkOptions>;

const onDeadLetterValues: readonly OnDeadLetter[] = ['release', 'hold'];

function bad(route: string, option: string, rule: string, value: unknown): ValidationError {
  return new ValidationError('POSTBOX_ERR_BAD_OPTION', `Route ${route}: park.${option} must be ${rule} (got ${String(value)}).`, {
    option: `park.${option}`,
  });
}

function positiveInteger(route: string, option: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) <= 0) throw bad(route, option, 'a positive integer', value);
  return value as number;
}

function limit(route: string, option: string, value: unknown): number | null {
  return value === null ? null : positiveInteger(route, option, value);
}

/** The route's park options, checked, with their defaults; undefined when the route does not park. */
export function resolveParkOptions(route: string, options: ParkOptions | boolean | undefined): ResolvedParkOptions | undefined {
  if (options === undefined || options === false) return undefined;
  if (options !== true && (typeof options !== 'object' || options === null)) throw bad(route, 'park', 'an object or a boolean', options);
  const given = options === true ? {} : options;
  const d = defaults.router.park;
  const resolved: ResolvedParkOptions = {
    initialDelayMs: positiveInteger(route, 'initialDelayMs', given.initialDelayMs ?? d.initialDelayMs),
    maxDelayMs: positiveInteger(route, 'maxDelayMs', given.maxDelayMs ?? d.maxDelayMs),
    multiplier: given.multiplier ?? d.multiplier,
    jitter: given.jitter ?? d.jitter,
    maxAttempts: limit(route, 'maxAttempts', given.maxAttempts === undefined ? d.maxAttempts : given.maxAttempts),
    maxAgeMs: limit(route, 'maxAgeMs', given.maxAgeMs === undefined ? d.maxAgeMs : given.maxAgeMs),
    onDeadLetter: given.onDeadLetter ?? d.onDeadLetter,
    batchSize: positiveInteger(route, 'batchSize', given.batchSize ?? d.batchSize),
  };
  if (resolved.maxDelayMs < resolved.initialDelayMs)
    throw bad(route, 'maxDelayMs', `at least initialDelayMs (${resolved.initialDelayMs})`, resolved.maxDelayMs);
  if (typeof resolved.multiplier !== 'number' || !Number.isFinite(resolved.multiplier) || resolved.multiplier < 1) {
    throw bad(route, 'multiplier', 'a finite number of at least 1', resolved.multiplier);
  }
  if (typeof resolved.jitter !== 'number' || !(resolved.jitter >= 0 && resolved.jitter <= 1))
    throw bad(route, 'jitter', 'a number from 0 to 1', resolved.jitter);
  if (resolved.maxAttempts === null && resolved.maxAgeMs === null) {
    throw bad(route, 'maxAttempts', 'set when maxAgeMs is null, or a message could stay parked for ever', null);
  }
  if (!onDeadLetterValues.includes(resolved.onDeadLetter)) {
    throw bad(route, 'onDeadLetter', `one of ${onDeadLetterValues.join(', ')}`, JSON.stringify(resolved.onDeadLetter));
  }
  return resolved;
}
