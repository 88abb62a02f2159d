import { defaults } from '../config/defaults.js';
import type { Logger } from '../observability/logger.js';

export interface SignalOptions {
  logger?: Logger;
  signals?: readonly NodeJS.Signals[];
  exit?: (code: number) => void;
  /**
   * Exit 1 if `shutdown` has not settled after this long (defaults.shutdownHardLimitMs, 5 s past the
   * default stop() deadline). Keep it above any longer deadline `shutdown` gives stop().
   */
  hardLimitMs?: number;
}

/**
 * On the first SIGTERM or SIGINT runs `shutdown` (stop fetching, finish in-flight work, commit,
 * close) and exits 0 when it completed in time, 1 otherwise. A second signal forces exit 1, and so
 * does a shutdown still running after the hard limit. Returns a function that removes the handlers.
 */
export function exitOnSignals(shutdown: () => Promise<boolean>, options: SignalOptions = {}): () => void {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let shuttingDown = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      options.logger?.warn({ signal }, 'second signal: exiting now');
      exit(1);
      return;
    }
    shuttingDown = true;
    options.logger?.info({ signal }, 'shutting down gracefully');
    const hardLimitMs = options.hardLimitMs ?? defaults.shutdownHardLimitMs;
    const hardLimit = setTimeout(() => {
      options.logger?.error({ hardLimitMs }, 'shutdown still running at its hard limit: exiting now');
      exit(1);
    }, hardLimitMs);
    // The limit only cuts a shutdown short; it never keeps an otherwise finished process alive.
    hardLimit.unref();
    shutdown().then(
      (completed) => {
        clearTimeout(hardLimit);
        options.logger?.info({ completed }, 'shutdown finished');
        exit(completed ? 0 : 1);
      },
      (error: unknown) => {
        clearTimeout(hardLimit);
        options.logger?.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
