/**
 * A latch that remembers a wake-up which arrived while nobody waited, so a NOTIFY that lands
 * between a read and the wait after it is never missed.
 */
export class Wakeup {
  private pending = false;
  private resolve: (() => void) | undefined;

  wake(): void {
    this.pending = true;
    this.resolve?.();
  }

  /** Clears a pending wake-up; call it right before reading. */
  consume(): void {
    this.pending = false;
  }

  /** Resolves on the next wake-up (true) or after timeoutMs (false), whichever is first. */
  wait(timeoutMs: number): Promise<boolean> {
    if (this.pending) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (woken: boolean) => {
        clearTimeout(timer);
        this.resolve = undefined;
        resolve(woken);
      };
      this.resolve = () => done(true);
    });
  }
}
