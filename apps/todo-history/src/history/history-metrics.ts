import { Counter, type Registry } from 'prom-client';

/** The history consumer's own counts; the router's counters do not see batches that succeed whole. */
export interface HistoryMetrics {
  stored: Counter<string>;
  duplicates: Counter<string>;
}

export function historyMetrics(registry: Registry): HistoryMetrics {
  return {
    stored: new Counter({
      name: 'todo_history_rows_stored_total',
      help: 'History rows added to todo_event_logs.',
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'todo_history_duplicates_total',
      help: 'Delivered events skipped because their message id was already stored.',
      registers: [registry],
    }),
  };
}
