import { existsSync } from 'node:fs';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger, Postbox, Router } from 'postbox';
import { isLoopbackHost, type RelayStatsSource, registerConsole, registerOpsRoutes } from 'postbox/ops';
import type { AppConfig } from './config.js';
import { appDefaults } from './defaults.js';
import { frameworkErrorHandler, installErrorHandling } from './http/error-handler.js';
import { historyHealthChecks } from './ops/health-checks.js';
import type { LiveFeed } from './queries/live-feed.js';
import { registerQueryRoutes } from './queries/query-routes.js';
import { registerTodoRoutes } from './todos/todo-routes.js';
import { TodoService } from './todos/todo-service.js';

export interface ServerParts {
  config: AppConfig;
  postbox: Postbox;
  router: Router;
  feed: LiveFeed;
  relay: RelayStatsSource | undefined;
  logger: Logger;
}

/** One Fastify app: the todo API, the history queries and live feed, the operations console (/ops/), health and metrics, and the page. */
export async function buildServer(parts: ServerParts): Promise<FastifyInstance> {
  const { config, postbox, router, feed, logger } = parts;
  const app = Fastify({
    logger: false,
    bodyLimit: config.bodyLimitBytes,
    routerOptions: { maxParamLength: 1_000 },
    frameworkErrors: frameworkErrorHandler,
  });
  installErrorHandling(app, logger);
  registerTodoRoutes(app, new TodoService(postbox, config.history.topic));
  registerQueryRoutes(app, postbox.db, feed);
  // Beyond loopback without OPS_TOKEN, the console shows everything and changes nothing.
  const readOnly = config.opsToken === undefined && !isLoopbackHost(config.host);
  if (readOnly)
    logger.warn({ host: config.host }, 'the operations console is read-only: set OPS_TOKEN to retry, discard, reset and rebuild from it');
  await registerConsole(app, {
    postbox,
    token: config.opsToken,
    tokenName: 'OPS_TOKEN',
    host: config.host,
    readOnly,
    relay: parts.relay,
    logger,
  });
  registerOpsRoutes(app, {
    db: postbox.db,
    metrics: router.metrics,
    maxLagMessages: config.history.maxLagMessages,
    extraChecks: historyHealthChecks(postbox, router, config.history),
  });
  app.addHook('preClose', async () => {
    await feed.close();
    // Requests in flight get a grace period; connections still open after it (idle ones a client keeps) are closed.
    setTimeout(() => app.server.closeAllConnections(), appDefaults.closeGraceMs).unref();
  });
  if (existsSync(config.publicDir)) {
    await app.register(fastifyStatic, { root: config.publicDir, prefix: '/' });
  } else {
    logger.warn({ publicDir: config.publicDir }, 'the web page is missing; only the API is served');
  }
  return app;
}
