import { defaults } from '../../config/defaults.js';
import { spanEvent } from '../../observability/tracing.js';
import type { Middleware } from '../handler.js';
import type { RoutedMessage } from '../routed-message.js';
import { recordFailure } from './failures.js';

export interface RetryOptions {
  /** Attempts in all, the first included. */
  maxAttempts?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  multiplier?: number;
  /** 0 to 1: the share of each delay that is randomised. */
  jitter?: number;
  /** By default an error is retried unless it says `retriable: false`. */
  shouldRetry?: (error: Error, attempt: number) => boolean;
  onRetry?: (info: { error: Error; attempt: number; delayMs: number; message: RoutedMessage }) => void;
}

export function defaultShouldRetry(error: Error): boolean {
  return (error as { retriable?: boolean }).retriable !== false;
}

export function backoffDelay(
  attempt: number,
  options: Required<Pick<RetryOptions, 'initialDelayMs' | 'maxDelayMs' | 'multiplier' | 'jitter'>>,
): number {
  const base = Math.min(options.maxDelayMs, options.initialDelayMs * options.multiplier ** (attempt - 1));
  return Math.round(base * (1 - options.jitter + Math.random() * options.jitter));
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Retries a failed attempt with exponential backoff and jitter, up to maxAttempts. */
export function retry(options: RetryOptions = {}): Middleware {
  const maxAttempts = options.maxAttempts ?? defaults.router.maxAttempts;
  const timing = {
    initialDelayMs: options.initialDelayMs ?? defaults.router.initialRetryDelayMs,
    maxDelayMs: options.maxDelayMs ?? defaults.router.maxRetryDelayMs,
    multiplier: options.multiplier ?? defaults.router.retryMultiplier,
    jitter: options.jitter ?? defaults.router.retryJitter,
  };
  const shouldRetry = options.shouldRetry ?? defaultShouldRetry;
  return (next) => async (message, context) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await next(message, { ...context, attempt });
      } catch (thrown) {
        const error = thrown as Error;
        recordFailure(message);
        if (context.signal.aborted || attempt >= maxAttempts || !shouldRetry(error, attempt)) throw error;
        const delayMs = backoffDelay(attempt, timing);
        options.onRetry?.({ error, attempt, delayMs, message });
        spanEvent('retry', { 'postbox.attempt': attempt, 'postbox.retry_delay_ms': delayMs }, error);
        context.logger.warn({ err: error, attempt, delayMs }, 'handler failed; retrying');
        await abortableSleep(delayMs, context.signal);
      }
    }
  };
}
