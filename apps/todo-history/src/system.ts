import type { FastifyInstance } from 'fastify';
import { assertSchemaCurrent, createLogger, type Database, type Logger, migrate, Postbox, Router } from 'postbox';
import { kafkaRelayFromEnv } from 'postbox/kafka';
import { opsServerFromEnv, type RelayStatsSource } from 'postbox/ops';
import type { AppConfig, Env } from './config.js';
import { todoHistoryMigrations } from './db/migration-set.js';
import { appDefaults } from './defaults.js';
import { historyMetrics } from './history/history-metrics.js';
import { historyRoute } from './history/history-route.js';
import { type HistoryTransport, historyTransport } from './history/history-source.js';
import { type PartitionMaintenance, startPartitionMaintenance } from './history/partition-maintenance.js';
import { LiveFeed } from './queries/live-feed.js';
import { buildServer } from './server.js';

export interface SystemOptions {
  logger?: Logger;
  /** An open database (tests); otherwise the one of the config. */
  database?: Database;
  /** The history consumer's transport and partitions; by default `historyTransport(config)`. */
  historyTransport?: HistoryTransport;
  relay?: RelayStatsSource;
  /** Read for ENABLE_METRICS / METRICS_HOST / METRICS_PORT (the separate metrics server). */
  env?: Env;
}

export interface System {
  config: AppConfig;
  logger: Logger;
  postbox: Postbox;
  router: Router;
  app: FastifyInstance;
  maintenance: PartitionMaintenance;
  feed: LiveFeed;
  /** Starts listening on HOST:PORT and returns the URL. */
  listen(): Promise<string>;
  /** Stops the consumer, closes the server (ending live streams) and the database; false if the deadline passed. */
  close(): Promise<boolean>;
}

/** Everything of the reference system in one process: schema, consumer, maintenance, HTTP. */
export async function startSystem(config: AppConfig, options: SystemOptions = {}): Promise<System> {
  const logger = options.logger ?? createLogger({ level: config.postbox.logLevel, name: 'todo-history' });
  const postbox = await Postbox.create({
    database: options.database,
    databaseUrl: config.postbox.databaseUrl,
    dataDir: config.dataDir,
    pool: config.postbox.pool,
    payloadLimitBytes: config.postbox.payloadLimitBytes,
    logger,
    migrate: config.migrate ? 'auto' : 'check',
    consumerDefaults: { pollIntervalMs: config.postbox.outbox.intervalMs, retryDelayMs: config.postbox.outbox.retryDelayMs },
  });
  const closers: (() => Promise<unknown>)[] = [];
  const closeAll = async () => {
    let completed = true;
    for (const close of closers.reverse()) {
      const result = await close().catch((error: unknown) => {
        logger.error({ err: error }, 'shutdown step failed');
        return false;
      });
      if (result === false) completed = false;
    }
    closers.length = 0;
    return completed;
  };
  closers.push(() => postbox.close(appDefaults.shutdownDeadlineMs));
  const { cleanup } = config.postbox;
  if (cleanup.enabled) {
    postbox.startMaintenance({ retention: { intervalMs: cleanup.intervalMs, olderThanMs: cleanup.afterDays * 86_400_000 } });
  }
  try {
    if (config.migrate) await migrate(postbox.db, { set: todoHistoryMigrations });
    else await assertSchemaCurrent(postbox.db, todoHistoryMigrations);
    const maintenance = await startPartitionMaintenance(postbox.db, {
      daysAhead: config.history.partitionsAheadDays,
      retentionDays: config.history.retentionDays,
      intervalMs: config.history.maintenanceIntervalMs,
      logger,
    });
    closers.push(() => maintenance.stop());
    const router = new Router(postbox, { logger });
    const metrics = historyMetrics(router.metrics.registry);
    router.addHandler(historyRoute(config.history, postbox.db, options.historyTransport ?? historyTransport(config), metrics));
    const feed = new LiveFeed(postbox.db, { ...appDefaults.stream, channel: appDefaults.notifyChannel }, logger);
    await feed.start();
    closers.push(() => feed.close());
    // With Kafka, the relay forwards the outbox topic to Kafka and the history consumer reads it there.
    const relay = config.kafkaBrokers
      ? kafkaRelayFromEnv(postbox, { topics: [config.history.topic], metrics: router.metrics, logger }, config.env)
      : undefined;
    const app = await buildServer({ config, postbox, router, feed, relay: options.relay ?? relay, logger });
    closers.push(() => app.close());
    await router.start();
    closers.push(() => router.stop(appDefaults.shutdownDeadlineMs));
    if (relay) {
      await relay.start();
      closers.push(() => relay.stop(appDefaults.shutdownDeadlineMs));
    }
    const metricsServer = await opsServerFromEnv({ db: postbox.db, metrics: router.metrics }, options.env ?? {});
    if (metricsServer) {
      logger.info({ url: metricsServer.url }, 'metrics server listening');
      closers.push(() => metricsServer.close());
    }
    return {
      config,
      logger,
      postbox,
      router,
      app,
      maintenance,
      feed,
      listen: () => app.listen({ host: config.host, port: config.port }),
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
