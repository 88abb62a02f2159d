import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { groupStatuses } from '../consumers/status.js';
import { deadLetterCounts } from '../deadletters/dead-letter-store.js';
import { watermarkDelaySeconds } from '../log/watermark.js';
import { parkedCounts } from '../parking/parked-admin.js';
import type { Executor } from '../sql/database.js';
import { timeStatus } from '../time/time-status.js';

const durationBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A scrape reads every gauge at once: gauges that share a query run it once, and reuse it for a second. */
const scrapeReuseMs = 1_000;

function oncePerScrape<T>(load: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    if (!last || Date.now() - last.at > scrapeReuseMs) last = { at: Date.now(), value: load() };
    return last.value;
  };
}

/**
 * Every Prometheus metric Postbox exports. The seeds' names are kept where they gave one
 * (outbox_* for the relay, kafka_* for the Kafka subscriber); the rest are postbox_*.
 */
export class PostboxMetrics {
  readonly registry: Registry;
  readonly handlerDuration: Histogram<'group' | 'handler' | 'outcome'>;
  readonly messagesHandled: Counter<'group' | 'handler' | 'outcome'>;
  readonly handlerErrors: Counter<'group' | 'handler'>;
  readonly outboxEventsProcessed: Counter<'topic' | 'status'>;
  readonly outboxProcessingDuration: Histogram<'topic'>;
  readonly outboxErrors: Counter<string>;
  readonly kafkaEventsProcessed: Counter<'topic' | 'status'>;
  readonly kafkaEventsErrors: Counter<'type'>;
  readonly kafkaEventProcessingDuration: Histogram<'topic'>;
  readonly kafkaConsumerLag: Gauge<'group' | 'topic' | 'partition'>;

  constructor(db?: Executor, registry: Registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    this.handlerDuration = new Histogram({
      name: 'postbox_handler_duration_seconds',
      help: 'Time from a message entering the handler chain to its outcome.',
      labelNames: ['group', 'handler', 'outcome'],
      buckets: durationBuckets,
      registers,
    });
    this.messagesHandled = new Counter({
      name: 'postbox_messages_handled_total',
      help: 'Messages by outcome: handled, dead_lettered, duplicate or parked.',
      labelNames: ['group', 'handler', 'outcome'],
      registers,
    });
    this.handlerErrors = new Counter({
      name: 'postbox_handler_errors_total',
      help: 'Handler attempts that failed (before any retry).',
      labelNames: ['group', 'handler'],
      registers,
    });
    this.outboxEventsProcessed = new Counter({
      name: 'outbox_events_processed_total',
      help: 'Outbox messages relayed, by topic and status (published or failed).',
      labelNames: ['topic', 'status'],
      registers,
    });
    this.outboxProcessingDuration = new Histogram({
      name: 'outbox_processing_duration_seconds',
      help: 'Time to relay a batch of outbox messages, by topic.',
      labelNames: ['topic'],
      buckets: durationBuckets,
      registers,
    });
    this.outboxErrors = new Counter({ name: 'outbox_errors_total', help: 'Relay batches that failed.', registers });
    this.kafkaEventsProcessed = new Counter({
      name: 'kafka_events_processed_total',
      help: 'Kafka messages handled, by topic and status.',
      labelNames: ['topic', 'status'],
      registers,
    });
    this.kafkaEventsErrors = new Counter({
      name: 'kafka_events_errors_total',
      help: 'Kafka message failures, by type (decode, handler, dead_letter).',
      labelNames: ['type'],
      registers,
    });
    this.kafkaEventProcessingDuration = new Histogram({
      name: 'kafka_event_processing_duration_seconds',
      help: 'Time to handle one Kafka message.',
      labelNames: ['topic'],
      buckets: durationBuckets,
      registers,
    });
    this.kafkaConsumerLag = new Gauge({
      name: 'kafka_consumer_lag',
      help: 'Messages between the last handled offset and the high watermark, per partition.',
      labelNames: ['group', 'topic', 'partition'],
      registers,
    });
    if (db) this.registerDatabaseGauges(db, registers);
  }

  /** Gauges read from the database on each scrape, so they are right whichever process did the work. */
  private registerDatabaseGauges(db: Executor, registers: Registry[]): void {
    // Gauges that share a query read it once per scrape.
    const statuses = oncePerScrape(() => groupStatuses(db));
    new Gauge({
      name: 'postbox_consumer_lag_messages',
      help: 'Messages a partition of a group has yet to read (partition 0 in a group of one).',
      labelNames: ['group', 'partition'],
      registers,
      async collect() {
        this.reset();
        for (const status of await statuses()) {
          for (const partition of status.partitions)
            this.set({ group: status.group, partition: partition.partition }, partition.lagMessages);
        }
      },
    });
    new Gauge({
      name: 'postbox_consumer_lag_seconds',
      help: 'Age of the oldest message a partition of a group has yet to read.',
      labelNames: ['group', 'partition'],
      registers,
      async collect() {
        this.reset();
        for (const status of await statuses()) {
          for (const partition of status.partitions)
            this.set({ group: status.group, partition: partition.partition }, partition.lagSeconds);
        }
      },
    });
    new Gauge({
      name: 'postbox_consumer_members',
      help: 'Processes running a group whose heartbeat is live.',
      labelNames: ['group'],
      registers,
      async collect() {
        this.reset();
        for (const status of await statuses()) this.set({ group: status.group }, status.members.filter((member) => member.live).length);
      },
    });
    new Gauge({
      name: 'postbox_consumer_partitions_unowned',
      help: 'Partitions of a group that no process holds now.',
      labelNames: ['group'],
      registers,
      async collect() {
        this.reset();
        for (const status of await statuses()) {
          this.set({ group: status.group }, status.partitions.filter((partition) => partition.owner === null).length);
        }
      },
    });
    new Gauge({
      name: 'postbox_watermark_delay_seconds',
      help: 'Age of the oldest open writing transaction; readers cannot pass it until it ends.',
      registers,
      async collect() {
        this.set(await watermarkDelaySeconds(db));
      },
    });
    new Gauge({
      name: 'postbox_dead_letters',
      help: 'Open dead letters by group.',
      labelNames: ['group'],
      registers,
      async collect() {
        this.reset();
        const totals = new Map<string, number>();
        for (const row of await deadLetterCounts(db)) totals.set(row.group, (totals.get(row.group) ?? 0) + row.count);
        for (const [group, count] of totals) this.set({ group }, count);
      },
    });
    const parked = oncePerScrape(() => parkedCounts(db));
    new Gauge({
      name: 'postbox_parked_messages',
      help: 'Parked messages by group: those waiting for their next attempt, the later messages of their keys behind them, and those held by a dead letter.',
      labelNames: ['group'],
      registers,
      async collect() {
        this.reset();
        for (const row of await parked()) this.set({ group: row.group }, row.total);
      },
    });
    new Gauge({
      name: 'postbox_parked_oldest_seconds',
      help: 'How long the oldest parked message of a group has been parked.',
      labelNames: ['group'],
      registers,
      async collect() {
        this.reset();
        for (const row of await parked()) this.set({ group: row.group }, row.oldestSeconds);
      },
    });
    const time = oncePerScrape(() => timeStatus(db));
    new Gauge({
      name: 'postbox_scheduled_messages',
      help: 'Messages waiting for their delivery time (deliverAt, delayMs, postbox.publish_at).',
      registers,
      async collect() {
        this.set((await time()).scheduledMessages);
      },
    });
    new Gauge({
      name: 'postbox_scheduled_overdue_seconds',
      help: 'How long the oldest due scheduled message or schedule tick has waited past its time; high when no process runs the timekeeper.',
      registers,
      async collect() {
        this.set((await time()).overdueSeconds);
      },
    });
  }
}
