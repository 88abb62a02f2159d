/** A message or job that falls due at `due` (ms since the epoch); `i` numbers it within its run. */
export interface DueItem {
  i: number;
  due: number;
}

/** One system that delivers messages at a time given when they are written: Postbox, pg-boss or graphile-worker. */
export interface DelayedSystem {
  /** How the system is configured, as the tables print it. */
  readonly label: string;
  /** Starts the workers and resolves once they are ready; each item handled is passed to onHandled as the handler gets it. */
  start(onHandled: (item: DueItem) => void): Promise<void>;
  /** Writes items due later, in the bulk writes the system offers. */
  write(items: readonly DueItem[]): Promise<void>;
  stop(): Promise<void>;
}

/** Items written per bulk write. */
export const writeChunk = 1_000;
