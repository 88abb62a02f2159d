import { Counter, Gauge, Histogram, type Metric, Registry } from 'prom-client';
import { projectionStatuses } from '../projections/projection-status.js';
import type { Executor } from '../sql/database.js';

const durationBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export type CommandStatus = 'success' | 'duplicate' | 'rejected' | 'conflict' | 'failed';

function existing<T extends Metric>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}

/**
 * The event store's metrics, under the names event-sourcing users expect (without a `mink_` prefix). They go on the
 * registry given, typically `router.metrics.registry`, so one /metrics serves everything; a second
 * EventStoreMetrics on the same registry shares the first one's metrics. With a database, projection
 * lag is read from it at scrape time.
 */
export class EventStoreMetrics {
  readonly registry: Registry;
  readonly eventsAppended: Counter<string>;
  readonly appendDuration: Histogram<string>;
  readonly commands: Counter<'type' | 'status'>;
  readonly commandDuration: Histogram<'type'>;

  constructor(registry: Registry = new Registry(), db?: Executor) {
    this.registry = registry;
    const registers = [registry];
    this.eventsAppended =
      existing(registry, 'events_appended_total') ??
      new Counter({ name: 'events_appended_total', help: 'Events appended to streams.', registers });
    this.appendDuration =
      existing(registry, 'append_duration_seconds') ??
      new Histogram({ name: 'append_duration_seconds', help: 'Time to append to a stream.', buckets: durationBuckets, registers });
    this.commands =
      existing(registry, 'commands_total') ??
      new Counter({
        name: 'commands_total',
        help: 'Commands handled, by type and status (success, duplicate, rejected, conflict, failed).',
        labelNames: ['type', 'status'],
        registers,
      });
    this.commandDuration =
      existing(registry, 'command_duration_seconds') ??
      new Histogram({
        name: 'command_duration_seconds',
        help: 'Time to handle a command, retries included.',
        labelNames: ['type'],
        buckets: durationBuckets,
        registers,
      });
    if (db && !existing(registry, 'projection_lag_events')) {
      new Gauge({
        name: 'projection_lag_events',
        help: 'Events a projection has yet to apply to its active read model.',
        labelNames: ['projection'],
        registers,
        async collect() {
          this.reset();
          for (const status of await projectionStatuses(db)) this.set({ projection: status.name }, status.lagEvents);
        },
      });
    }
  }
}
