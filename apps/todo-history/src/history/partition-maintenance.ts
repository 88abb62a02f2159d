import type { Executor, Logger } from 'postbox';

export interface PartitionMaintenanceOptions {
  /** Daily partitions are kept ready from today (UTC) through this many days ahead. */
  daysAhead: number;
  /** When set, partitions (or TimescaleDB chunks) older than this many days are dropped. */
  retentionDays: number | undefined;
  intervalMs: number;
  logger: Logger;
}

export interface MaintenanceResult {
  storage: string;
  created: number;
  dropped: number;
}

export interface PartitionMaintenance {
  runOnce(): Promise<MaintenanceResult>;
  /** Stops the timer and waits for a pass in progress. */
  stop(): Promise<void>;
}

/** One pass: create the coming days' partitions, then apply retention when it is configured. */
export async function maintainPartitions(
  db: Executor,
  options: Omit<PartitionMaintenanceOptions, 'intervalMs' | 'logger'>,
): Promise<MaintenanceResult> {
  const storage = await db.query<{ storage: string }>('select todo_history.event_log_storage() as storage');
  const created = await db.query<{ created: number }>('select todo_history.ensure_event_log_partitions($1) as created', [
    options.daysAhead,
  ]);
  let dropped = 0;
  if (options.retentionDays !== undefined) {
    const result = await db.query<{ dropped: number }>(
      `select todo_history.drop_event_logs_before(date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' - make_interval(days => $1)) as dropped`,
      [options.retentionDays],
    );
    dropped = Number(result.rows[0]?.dropped ?? 0);
  }
  return { storage: storage.rows[0]?.storage ?? 'unknown', created: Number(created.rows[0]?.created ?? 0), dropped };
}

/**
 * Runs maintenance now (a failure stops start-up) and then on a timer (a failure is logged and
 * tried again at the next tick). Rows of a day without a partition stay in the default one.
 */
export async function startPartitionMaintenance(db: Executor, options: PartitionMaintenanceOptions): Promise<PartitionMaintenance> {
  const runOnce = () => maintainPartitions(db, options);
  const first = await runOnce();
  options.logger.info(first, 'history partitions ready');
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    running ??= runOnce()
      .then(
        (result) => options.logger.debug(result, 'history partition maintenance ran'),
        (error: unknown) =>
          options.logger.error({ err: error }, 'history partition maintenance failed; it runs again at the next interval'),
      )
      .finally(() => {
        running = undefined;
      });
  }, options.intervalMs);
  timer.unref();
  return {
    runOnce,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
