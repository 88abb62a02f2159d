import type { FastifyInstance } from 'fastify';
import { defaults } from '../../config/defaults.js';
import { ValidationError } from '../../errors/postbox-error.js';
import type { Logger } from '../../observability/logger.js';
import { redactUrl } from '../../sql/connection-secrets.js';
import type { Database } from '../../sql/database.js';
import { loadConsoleAssets } from './console-assets.js';
import type { ConsoleContext, ConsoleRoutes, RelayStatsSource } from './console-context.js';
import { checkGuardSettings, consoleGuard } from './console-guard.js';
import { errorReply } from './error-reply.js';
import { consoleInfoRoutes } from './routes/console-info-routes.js';
import { deadLettersRoutes } from './routes/dead-letters-routes.js';
import { groupResetRoutes } from './routes/group-reset-routes.js';
import { groupsRoutes } from './routes/groups-routes.js';
import { holdersRoutes } from './routes/holders-routes.js';
import { pageRoutes } from './routes/page-routes.js';
import { parkedRoutes } from './routes/parked-routes.js';
import { projectionsRoutes } from './routes/projections-routes.js';
import { relayRoutes } from './routes/relay-routes.js';
import { samplesRoutes } from './routes/samples-routes.js';
import { scheduledRoutes } from './routes/scheduled-routes.js';
import { schedulesRoutes } from './routes/schedules-routes.js';
import { type SamplerSettings, ThroughputSampler } from './throughput-sampler.js';

/** What the console shows: a Postbox, or anything that holds its database. */
export interface ConsoleHost {
  readonly db: Database;
}

export interface ConsoleOptions {
  postbox: ConsoleHost;
  /**
   * The bearer token every route that changes state needs (`Authorization: Bearer <token>`), at
   * least defaults.opsConsole.minTokenLength characters. Without one, such routes work only on
   * loopback: registering on another host is refused, unless the console is read-only.
   */
  token?: string;
  /** What the token is called where it is set, named in refusals and on the page: `OPS_TOKEN`, say. */
  tokenName?: string;
  /** The address the server listens on (`0.0.0.0`, `127.0.0.1`...), checked against the token rule at registration. */
  host?: string;
  /** Shows everything and changes nothing: every route that changes state answers 403. */
  readOnly?: boolean;
  /** Where the page and its API live; defaults.opsConsole.prefix (`/ops`), or '' for the root. */
  prefix?: string;
  /** The relay whose statistics the console shows (a KafkaRelay). */
  relay?: RelayStatsSource;
  /** The sampler behind the charts (defaults.opsConsole.sample*), or false for none. */
  sampler?: Partial<SamplerSettings> | false;
  /** How often the page refreshes; defaults.opsConsole.pageRefreshMs. */
  refreshMs?: number;
  /** Where failed samples and failed requests are logged; the Fastify instance's logger by default. */
  logger?: Pick<Logger, 'warn' | 'error'>;
}

/** Every resource of the API, one file each; a new panel's routes are added here. */
const resources: readonly ConsoleRoutes[] = [
  consoleInfoRoutes,
  groupsRoutes,
  groupResetRoutes,
  deadLettersRoutes,
  parkedRoutes,
  scheduledRoutes,
  schedulesRoutes,
  projectionsRoutes,
  holdersRoutes,
  relayRoutes,
  samplesRoutes,
];

const readOnlyMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

function positiveInteger(value: unknown, option: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value;
  throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `${option} must be a positive whole number (got ${String(value)}).`, { option });
}

function checkPrefix(prefix: unknown): string {
  if (typeof prefix === 'string' && /^(\/[A-Za-z0-9._~-]+)*$/.test(prefix)) return prefix;
  throw new ValidationError(
    'POSTBOX_ERR_BAD_OPTION',
    `prefix must be '' or a path such as /ops, without a trailing slash (got ${JSON.stringify(prefix)}).`,
    { option: 'prefix' },
  );
}

function samplerSettings(sampler: ConsoleOptions['sampler']): SamplerSettings | undefined {
  if (sampler === false) return undefined;
  const { sampleIntervalMs, sampleWindowMs, maxSampledGroups } = defaults.opsConsole;
  const settings = {
    intervalMs: positiveInteger(sampler?.intervalMs ?? sampleIntervalMs, 'sampler.intervalMs'),
    windowMs: positiveInteger(sampler?.windowMs ?? sampleWindowMs, 'sampler.windowMs'),
    maxGroups: positiveInteger(sampler?.maxGroups ?? maxSampledGroups, 'sampler.maxGroups'),
  };
  if (settings.windowMs < settings.intervalMs) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'sampler.windowMs must be at least sampler.intervalMs.', {
      option: 'sampler.windowMs',
    });
  }
  return settings;
}

/**
 * The operations console as a Fastify plugin: a page (`<prefix>/`) and its JSON API
 * (`<prefix>/api/...`) showing consumer groups and their partitions, dead letters, parked
 * messages, messages waiting for their time and schedules, projections, the transactions holding
 * readers back, the relay, and charts of lag and throughput. Routes that change state (retry,
 * discard, release, cancel, pause, reset, rebuild...) pass the guard first: a bearer token, or
 * loopback only. The sampler behind the charts starts when the app is ready and stops when it closes.
 */
export async function registerConsole(app: FastifyInstance, options: ConsoleOptions): Promise<void> {
  const db = options.postbox?.db;
  if (!db || typeof db.query !== 'function') {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'registerConsole needs postbox: a Postbox, or an object with its db.', {
      option: 'postbox',
    });
  }
  const guardSettings = {
    token: options.token,
    readOnly: options.readOnly === true,
    host: options.host,
    tokenName: options.tokenName ?? 'the console token',
  };
  checkGuardSettings(guardSettings);
  const prefix = checkPrefix(options.prefix ?? defaults.opsConsole.prefix);
  const sampling = samplerSettings(options.sampler);
  const refreshMs = positiveInteger(options.refreshMs ?? defaults.opsConsole.pageRefreshMs, 'refreshMs');
  const logger = options.logger ?? app.log;
  const assets = await loadConsoleAssets();
  const sampler = sampling ? new ThroughputSampler(db, sampling, logger) : undefined;
  const context: ConsoleContext = {
    db,
    relay: options.relay,
    sampler,
    page: {
      tokenRequired: options.token !== undefined,
      tokenName: guardSettings.tokenName,
      readOnly: guardSettings.readOnly,
      refreshMs,
      deadLetterLimit: defaults.opsConsole.deadLetterLimit,
      parkedLimit: defaults.opsConsole.parkedLimit,
      scheduledLimit: defaults.opsConsole.scheduledLimit,
      database: redactUrl(db.description),
    },
  };
  const guard = consoleGuard(guardSettings);

  await app.register(
    async (scope) => {
      scope.setErrorHandler((error, request, reply) => {
        const answer = errorReply(error);
        if (answer.unexpected) logger.error({ err: error, method: request.method, url: request.url }, 'a console request failed');
        return reply.code(answer.status).send(answer.body);
      });
      scope.addHook('onRoute', (route) => {
        route.bodyLimit ??= defaults.opsConsole.bodyLimitBytes;
      });
      // Every route of the console that changes state passes the guard before its body is read, including any added later.
      scope.addHook('onRequest', async (request) => {
        if (!readOnlyMethods.has(request.method)) guard(request.raw);
      });
      pageRoutes(scope, assets, prefix);
      for (const resource of resources) resource(scope, context);
      if (sampler) {
        scope.addHook('onReady', async () => sampler.start());
        scope.addHook('onClose', async () => sampler.stop());
      }
    },
    { prefix },
  );
}
