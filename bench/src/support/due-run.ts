import type { DelayedSystem, DueItem } from './delayed-system.js';

export interface DueRun {
  label: string;
  count: number;
  /** How long writing all items took, before the first fell due. */
  writeMs: number;
  /** Per item, the first handling's time minus its due time, in ms. */
  lateness: number[];
  /** When the first item fell due, and when the last item was first handled (ms since the epoch). */
  firstDue: number;
  lastHandledAt: number;
  /** Handlings beyond the first. */
  duplicates: number;
}

/** Items numbered from 0, the i-th due at dueOf(i). */
export function dueItems(count: number, dueOf: (i: number) => number): DueItem[] {
  return Array.from({ length: count }, (_, i) => ({ i, due: dueOf(i) }));
}

/**
 * Starts the system, then writes the items planned (all due after the write ends, or the run fails:
 * the plan left too little lead) and waits until every item was handled, at most `graceMs` after the
 * last was due. Times are this process's clock, which is the database's: the server runs on this machine.
 */
export async function runDue(system: DelayedSystem, plan: () => readonly DueItem[], graceMs: number): Promise<DueRun> {
  let items: readonly DueItem[] = [];
  let handledAt = new Float64Array(0);
  let handled = 0;
  let duplicates = 0;
  let lastHandledAt = 0;
  let allHandled: () => void = () => {};
  const done = new Promise<void>((resolve) => (allHandled = resolve));
  const onHandled = (item: DueItem) => {
    const at = Date.now();
    if (!Number.isNaN(handledAt[item.i] as number)) {
      duplicates += 1;
      return;
    }
    handledAt[item.i] = at;
    lastHandledAt = Math.max(lastHandledAt, at);
    handled += 1;
    if (handled === items.length) allHandled();
  };
  try {
    await system.start(onHandled);
    items = plan();
    handledAt = new Float64Array(items.length).fill(Number.NaN);
    const writeStarted = Date.now();
    await system.write(items);
    const writeEnded = Date.now();
    const firstDue = items.reduce((min, item) => Math.min(min, item.due), Number.POSITIVE_INFINITY);
    if (writeEnded > firstDue) {
      throw new Error(
        `${system.label}: writing took ${writeEnded - writeStarted} ms and ended after the first item fell due; give it more lead`,
      );
    }
    const lastDue = items.reduce((max, item) => Math.max(max, item.due), 0);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${system.label}: ${handled} of ${items.length} handled ${graceMs} ms after the last was due`)),
        lastDue - Date.now() + graceMs,
      );
    });
    await Promise.race([done, deadline]);
    clearTimeout(timer);
    const lateness = items.map((item) => (handledAt[item.i] as number) - item.due);
    return { label: system.label, count: items.length, writeMs: writeEnded - writeStarted, lateness, firstDue, lastHandledAt, duplicates };
  } finally {
    await system.stop();
  }
}
