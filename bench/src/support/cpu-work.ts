let sink = 1;

/**
 * A fixed amount of CPU work: `iterations` rounds of xorshift, kept alive through a module-level
 * sink. Unlike a busy wait on the clock, it costs the same CPU whether or not the process is
 * descheduled in the middle, so a handler built on it burns a fixed CPU time per message.
 */
export function burn(iterations: number): number {
  let x = sink | 1;
  for (let i = 0; i < iterations; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  sink = x;
  return x;
}

/**
 * The iterations of burn() that take `targetUs` of CPU on an uncontended core: the fastest of many
 * short samples, so that a busy moment on a shared machine does not inflate the count.
 */
export function calibrate(targetUs: number): number {
  const probe = 200_000;
  for (let i = 0; i < 50; i++) burn(probe); // let the JIT settle
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 200; i++) {
    const start = performance.now();
    burn(probe);
    best = Math.min(best, performance.now() - start);
  }
  return Math.max(1, Math.round((probe * targetUs) / (best * 1000)));
}
