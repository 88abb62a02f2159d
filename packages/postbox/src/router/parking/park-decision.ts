import type { ParkedFailure } from '../../parking/parked-store.js';
import type { FailureRecord } from '../middleware/failures.js';
import { backoffDelay } from '../middleware/retry.js';
import type { ResolvedParkOptions } from './park-options.js';

/** What every parking of a route goes by. */
export interface ParkingRules {
  group: string;
  handler: string;
  options: ResolvedParkOptions;
  /** The route's retry.shouldRetry: an error it would not retry is not parked either. */
  retriable: (error: Error, attempt: number) => boolean;
}

/**
 * Whether a message whose attempts failed waits for another (and when), or goes to dead letters.
 * `parkedBefore` is how many attempts from parking it has had, undefined when this failure is the
 * one that parks it. An error that says it cannot succeed again, the last attempt, or a message past
 * its maximum age goes to dead letters. The delay grows with each attempt from parking, up to its cap,
 * and never runs past the maximum age, so that the last attempt is made at that age.
 */
export function decidePark(
  options: ResolvedParkOptions,
  failures: FailureRecord,
  error: Error,
  retriable: (error: Error, attempt: number) => boolean,
  parkedBefore: number | undefined,
  now: number = Date.now(),
): ParkedFailure | undefined {
  if (!retriable(error, failures.attempts)) return undefined;
  const parkedAttempts = parkedBefore === undefined ? 0 : parkedBefore + 1;
  if (options.maxAttempts !== null && parkedAttempts >= options.maxAttempts) return undefined;
  const age = now - failures.firstFailedAt.getTime();
  if (options.maxAgeMs !== null && age >= options.maxAgeMs) return undefined;
  const backoff = backoffDelay(parkedAttempts + 1, options);
  const delayMs = options.maxAgeMs === null ? backoff : Math.min(backoff, options.maxAgeMs - age);
  return {
    attempts: failures.attempts,
    parkedAttempts,
    firstFailedAt: failures.firstFailedAt,
    lastFailedAt: failures.lastFailedAt,
    error,
    delayMs,
  };
}
