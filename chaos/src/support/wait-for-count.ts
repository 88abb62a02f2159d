import { delay } from './wait.js';

export interface CountWait {
  /** True once the count reached the target. */
  reached: boolean;
  count: number;
  /** From the call to the moment the target was reached, or to giving up. */
  elapsedMs: number;
}

/**
 * Waits until count() reaches target. It gives up early when the count has not moved for
 * stallMs (something was skipped and will never come), and at the latest after timeoutMs.
 */
export async function waitForCount(
  count: () => number | Promise<number>,
  target: number,
  options: { stallMs: number; timeoutMs: number; intervalMs?: number },
): Promise<CountWait> {
  const started = performance.now();
  let last = await count();
  let movedAt = started;
  while (last < target) {
    const now = performance.now();
    if (now - movedAt > options.stallMs || now - started > options.timeoutMs) {
      return { reached: false, count: last, elapsedMs: now - started };
    }
    await delay(options.intervalMs ?? 50);
    const current = await count();
    if (current !== last) movedAt = performance.now();
    last = current;
  }
  return { reached: true, count: last, elapsedMs: performance.now() - started };
}
