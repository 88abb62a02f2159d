import { defaults } from '../config/defaults.js';
import { wholeBatchFirst } from '../consumers/split-batch.js';
import type { DeadLetter } from '../deadletters/dead-letter-store.js';
import { redeliverRetries, watchRetryRequests } from '../deadletters/redelivery.js';
import { DecodeError, PostboxError, ValidationError } from '../errors/postbox-error.js';
import type { HealthCheck } from '../observability/health.js';
import type { Logger } from '../observability/logger.js';
import { PostboxMetrics } from '../observability/metrics.js';
import { enqueue } from '../outbox/enqueue.js';
import { type ChainOptions, compose } from './compose.js';
import type { Handler, HandlerContext, Middleware, OutcomeHandler } from './handler.js';
import { runInLanes } from './lanes.js';
import { logSource } from './log-source.js';
import { pruneInbox } from './middleware/dedupe.js';
import { recordBatchHandled } from './middleware/observe.js';
import type { RetryOptions } from './middleware/retry.js';
import type { RouterHost, RouteSource, RouteSourceFactory, SourceBatchContext } from './route-source.js';
import type { RoutedMessage } from './routed-message.js';

export interface RouteOptions<P = unknown> {
  /** The handler's name, in logs, metrics and dead letters. */
  name: string;
  /** The consumer group; defaults to the name. */
  group?: string;
  topics: readonly string[];
  /** The transport; the PostgreSQL log unless given (see `logSource`, `kafkaSource`). */
  source?: RouteSourceFactory;
  /** Writes on `context.tx` commit with the checkpoint. Messages of a batch then run one at a time. */
  transactional?: boolean;
  /** Keys handled in parallel outside transactional mode; one key is always handled in order. */
  concurrency?: number;
  /**
   * Partitions of the route's group on the log: the processes running the route share them, each
   * partition read by one at a time in key order. 1 by default (one process reads, others stand by).
   */
  partitions?: number;
  batchSize?: number;
  handle?: Handler<P>;
  /** A batch handler; when a batch fails it is split, so that only the bad message is retried and dead-lettered. */
  handleBatch?: (messages: RoutedMessage<P>[], context: HandlerContext) => Promise<void>;
  /** Checks or converts a payload; a throw sends the message to dead letters at once. */
  decode?: (message: RoutedMessage) => P;
  retry?: RetryOptions | false;
  timeoutMs?: number;
  dedupe?: boolean;
  deadLetter?: boolean;
  use?: readonly Middleware[];
}

export interface RouterOptions {
  metrics?: PostboxMetrics;
  logger?: Logger;
  redeliveryIntervalMs?: number;
  dedupeRetentionMs?: number;
}

interface Route {
  options: RouteOptions;
  group: string;
  source: RouteSource;
  chain: OutcomeHandler;
  chainOptions: ChainOptions;
}

export type RouterState = 'idle' | 'running' | 'stopping' | 'stopped';

/**
 * Handlers registered by topic and group, each behind the middleware chain, over the PostgreSQL
 * log or Kafka. One `stop()` shuts every route down gracefully.
 */
export class Router {
  readonly metrics: PostboxMetrics;
  private readonly logger: Logger;
  private readonly routes: Route[] = [];
  private stateValue: RouterState = 'idle';
  private readonly abort = new AbortController();
  private inboxTimer: NodeJS.Timeout | undefined;
  private stopRedelivery: (() => Promise<void>) | undefined;

  /** `host` is usually the application's Postbox. */
  constructor(
    readonly host: RouterHost,
    private readonly options: RouterOptions = {},
  ) {
    this.metrics = options.metrics ?? new PostboxMetrics(host.db);
    this.logger = options.logger ?? host.logger;
  }

  get state(): RouterState {
    return this.stateValue;
  }

  addHandler<P>(route: RouteOptions<P>): this {
    if (this.stateValue !== 'idle') throw new PostboxError('POSTBOX_ERR_ROUTER_STATE', 'Add handlers before the router starts.');
    if (!route.handle === !route.handleBatch) {
      throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `Route ${route.name}: pass exactly one of handle or handleBatch.`, {
        option: 'handle',
      });
    }
    const concurrency = route.concurrency ?? defaults.router.concurrency;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
      throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `Route ${route.name}: concurrency must be a positive integer.`, {
        option: 'concurrency',
      });
    }
    const group = route.group ?? route.name;
    if (this.routes.some((existing) => existing.group === group)) {
      throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `Two routes use the group ${group}; a group has one handler.`, {
        option: 'group',
      });
    }
    const settings = {
      host: this.host,
      group,
      topics: route.topics,
      transactional: route.transactional ?? false,
      batchSize: route.batchSize,
      partitions: route.partitions,
      metrics: this.metrics,
      logger: this.logger,
    };
    const chainOptions: ChainOptions = {
      db: this.host.db,
      metrics: this.metrics,
      retry: route.retry,
      timeoutMs: route.timeoutMs,
      dedupe: route.dedupe,
      deadLetter: route.deadLetter,
      use: route.use,
    };
    const generic = route as RouteOptions;
    this.routes.push({
      options: generic,
      group,
      source: (route.source ?? logSource())(settings),
      chain: compose(singleHandler(generic), chainOptions),
      chainOptions,
    });
    return this;
  }

  async start(): Promise<void> {
    if (this.stateValue !== 'idle') throw new PostboxError('POSTBOX_ERR_ROUTER_STATE', `The router is ${this.stateValue}.`);
    this.stateValue = 'running';
    const started: Route[] = [];
    try {
      for (const route of this.routes) {
        await route.source.start((messages, context) => this.deliver(route, messages, context));
        started.push(route);
      }
    } catch (error) {
      // Leave nothing half-started: the routes that did start are stopped again.
      await Promise.all(started.map((route) => route.source.stop(defaults.shutdownDeadlineMs).catch(() => false)));
      this.stateValue = 'stopped';
      throw error;
    }
    this.stopRedelivery = await watchRetryRequests(
      this.host.db,
      this.options.redeliveryIntervalMs ?? defaults.router.redeliveryIntervalMs,
      this.logger,
      () => this.redeliver(),
    );
    if (this.routes.some((route) => route.options.dedupe)) {
      const retentionMs = this.options.dedupeRetentionMs ?? defaults.router.dedupeRetentionMs;
      this.inboxTimer = setInterval(
        () => {
          pruneInbox(this.host.db, retentionMs).catch((error) => this.logger.error({ err: error }, 'inbox pruning failed'));
        },
        Math.min(retentionMs, 3_600_000),
      );
      this.inboxTimer.unref();
    }
  }

  /** Health of the transports that report it (a Kafka consumer, say), for `extraChecks` of /health/ready. */
  async health(): Promise<HealthCheck[]> {
    const checks = await Promise.all(this.routes.map((route) => route.source.health?.()));
    return checks.filter((check): check is HealthCheck => check !== undefined);
  }

  /** Stops fetching on every route and lets batches in hand finish and commit; false if the deadline passed first. */
  async stop(deadlineMs: number = defaults.shutdownDeadlineMs): Promise<boolean> {
    if (this.stateValue !== 'running') {
      this.stateValue = 'stopped';
      return true;
    }
    this.stateValue = 'stopping';
    clearInterval(this.inboxTimer);
    await this.stopRedelivery?.();
    const timer = setTimeout(() => this.abort.abort(new PostboxError('POSTBOX_ERR_ROUTER_STATE', 'Stop deadline passed.')), deadlineMs);
    const results = await Promise.all(this.routes.map((route) => route.source.stop(deadlineMs)));
    clearTimeout(timer);
    this.stateValue = 'stopped';
    return results.every(Boolean);
  }

  private context(route: Route, batch: SourceBatchContext): HandlerContext {
    return {
      group: route.group,
      handler: route.options.name,
      tx: batch.tx,
      partition: batch.partition,
      signal: AbortSignal.any([batch.signal, this.abort.signal]),
      attempt: 1,
      logger: this.logger.child({ group: route.group, handler: route.options.name }),
      publish: batch.publish,
    };
  }

  private async deliver(route: Route, messages: RoutedMessage[], batch: SourceBatchContext): Promise<void> {
    const context = this.context(route, batch);
    const decoded = messages.map((message) => decodeMessage(route.options, message));
    // In a transaction one connection serves the batch, so its messages run one at a time.
    const concurrency = batch.tx ? 1 : (route.options.concurrency ?? defaults.router.concurrency);
    const oneByOne = (items: RoutedMessage[]) =>
      runInLanes(items, concurrency, async (message) => {
        await route.chain(message, context);
      });
    const handleBatch = route.options.handleBatch;
    if (!handleBatch) return oneByOne(decoded);
    const good = decoded.filter((message) => !message.decodeError);
    const started = process.hrtime.bigint();
    const whole = await wholeBatchFirst(good, {
      tx: batch.tx,
      signal: context.signal,
      logger: context.logger,
      whole: (items) => handleBatch(items, context),
      oneByOne,
    });
    if (whole) recordBatchHandled(this.metrics, context, good, Number(process.hrtime.bigint() - started) / 1e9);
    // Messages that could not be decoded go through the chain, which dead-letters them.
    await oneByOne(decoded.filter((message) => message.decodeError));
  }

  /** Handles the dead letters of every route's group that someone asked to retry; only that group sees them. */
  private async redeliver(): Promise<void> {
    for (const route of this.routes) {
      if (this.stateValue !== 'running') return;
      await redeliverRetries(this.host.db, route.group, async (tx, letter) => {
        const chain = compose(singleHandler(route.options), { ...route.chainOptions, db: tx });
        const context = this.context(route, {
          tx: route.options.transactional ? tx : undefined,
          signal: this.abort.signal,
          publish: (messages) => enqueue(tx, messages, { payloadLimitBytes: this.host.payloadLimitBytes }),
        });
        const outcome = await chain(decodeMessage(route.options, fromDeadLetter(letter)), context);
        return outcome === 'dead_lettered' ? 'dead_lettered' : 'retried';
      }).catch((error) =>
        this.logger.error({ err: error, group: route.group }, 'redelivery of dead letters failed; it will be tried again'),
      );
    }
  }
}

function singleHandler(route: RouteOptions): Handler {
  if (route.handle) return route.handle;
  const handleBatch = route.handleBatch as NonNullable<RouteOptions['handleBatch']>;
  return (message, context) => handleBatch([message], context);
}

function decodeMessage(route: RouteOptions, message: RoutedMessage): RoutedMessage {
  if (!route.decode || message.decodeError) return message;
  try {
    return { ...message, payload: route.decode(message) };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return {
      ...message,
      decodeError: new DecodeError('POSTBOX_ERR_DECODE', `Message ${message.id} could not be decoded: ${reason}`, {}, { cause: error }),
    };
  }
}

function fromDeadLetter(letter: DeadLetter): RoutedMessage {
  const [first = '0', second = '0'] = letter.sourcePosition.split('/');
  const decodeError = letter.payload === null && letter.rawPayload !== null;
  return {
    id: letter.messageId,
    topic: letter.topic,
    type: letter.type ?? '',
    key: letter.key,
    payload: letter.payload,
    headers: letter.headers as RoutedMessage['headers'],
    createdAt: letter.createdAt,
    source:
      letter.source === 'log'
        ? { kind: 'log', transactionId: BigInt(first), globalPosition: BigInt(second) }
        : { kind: 'kafka', partition: Number(first), offset: second },
    raw: letter.rawPayload ?? undefined,
    decodeError: decodeError ? new DecodeError('POSTBOX_ERR_DECODE', `Message ${letter.messageId} still cannot be decoded.`) : undefined,
  };
}
