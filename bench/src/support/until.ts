import { sleep } from './timing.js';

/** Resolves once check() holds, looking every 10 ms; fails after timeoutMs, saying what it waited for. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Gave up after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}
