import type { Logger } from '../observability/logger.js';

export interface SignalOptions {
  logger?: Logger;
  signals?: readonly NodeJS.Signals[];
  exit?: (code: number) => void;
}

/**
 * On the first SIGTERM or SIGINT runs `shutdown` (stop fetching, finish in-flight work, commit,
 * close) and exits 0 when it completed in time, 1 otherwise. A second signal forces exit 1.
 * Returns a function that removes the handlers.
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
    shutdown().then(
      (completed) => {
        options.logger?.info({ completed }, 'shutdown finished');
        exit(completed ? 0 : 1);
      },
      (error: unknown) => {
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
