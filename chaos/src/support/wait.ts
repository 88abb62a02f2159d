export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls check every intervalMs until it returns true; throws with the message (read then) after timeoutMs. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  message: string | (() => string),
  intervalMs = 20,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${typeof message === 'string' ? message : message()}`);
    }
    await delay(intervalMs);
  }
}

/** A whole number of milliseconds between min and max, uniformly. */
export function randomBetween(min: number, max: number): number {
  return Math.round(min + Math.random() * (max - min));
}
