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
import { defaultShouldRetry, type RetryOptions } from './middleware/retry.js';
import type { ParkingRules } from './parking/park-decision.js';
import { type ParkOptions, resolveParkOptions } from './parking/park-options.js';
import { ParkedBatch } from './parking/parked-batch.js';
import { ParkedRetries } from './parking/parked-retries.js';
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
  /**
   * Parks a message whose quick attempts (`retry`) failed: it leaves its batch with the time of its
   * next attempt (a delay that grows, up to a cap) and the checkpoint moves on, while the later
   * messages of its key wait behind it, unattempted, and every other key goes on. In the end it is
   * handled (its key's waiting messages follow, in log order) or goes to dead letters. `true` for the
   * defaults. Routes on the PostgreSQL log only.
   */
  park?: ParkOptions | boolean;
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
  handler: Handler;
  chain: OutcomeHandler;
  chainOptions: ChainOptions;
  parking?: { rules: ParkingRules; retries: ParkedRetries };
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
  private stopParkedWakeups: (() => Promise<void>) | undefined;

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
    const park = resolveParkOptions(route.name, route.park);
    if (park && route.deadLetter === false) {
      throw new ValidationError(
        'POSTBOX_ERR_BAD_OPTION',
        `Route ${route.name}: a parked message that keeps failing ends in dead letters, so park cannot go with deadLetter: false.`,
        { option: 'park' },
      );
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
      // A parking route always counts its attempts in process, even when it makes only one.
      retry: park && route.retry === false ? { maxAttempts: 1 } : route.retry,
      timeoutMs: route.timeoutMs,
      dedupe: route.dedupe,
      deadLetter: route.deadLetter,
      use: route.use,
    };
    const generic = route as RouteOptions;
    const handler = singleHandler(generic);
    const source = (route.source ?? logSource())(settings);
    // Parked retries must never overlap the batches of the message's partition, and must stop when the
    // partition moves: the log's consumer groups run them between batches, fenced by the partition's
    // lease. A Kafka consumer gives nothing to fence PostgreSQL writes with (a partition reassigned in a
    // rebalance cannot be told from one still held), so parking is refused there.
    if (park && (source.kind !== 'log' || !source.wakeBetweenBatches)) {
      throw new ValidationError(
        'POSTBOX_ERR_BAD_OPTION',
        `Route ${route.name}: park is for routes on the PostgreSQL log; this route's source (${source.kind}) cannot fence parked retries by partition. Use retry with dead letters there.`,
        { option: 'park' },
      );
    }
    const entry: Route = { options: generic, group, source, handler, chain: compose(handler, chainOptions), chainOptions };
    if (park) {
      const rules: ParkingRules = {
        group,
        handler: route.name,
        options: park,
        retriable: (route.retry || undefined)?.shouldRetry ?? defaultShouldRetry,
      };
      const retry = chainOptions.retry || undefined;
      entry.parking = {
        rules,
        retries: new ParkedRetries({
          db: this.host.db,
          rules,
          transactional: settings.transactional,
          chain: (parking, again) =>
            compose(handler, { ...chainOptions, park: parking, retry: again ? { ...retry, maxAttempts: 1 } : retry }),
          decode: (message) => decodeMessage(generic, message),
          context: (batch) => this.context(entry, batch),
          payloadLimitBytes: this.host.payloadLimitBytes,
          pollIntervalMs: defaults.router.park.pollIntervalMs,
          logger: this.logger,
        }),
      };
    }
    this.routes.push(entry);
    return this;
  }

  async start(): Promise<void> {
    if (this.stateValue !== 'idle') throw new PostboxError('POSTBOX_ERR_ROUTER_STATE', `The router is ${this.stateValue}.`);
    this.stateValue = 'running';
    const started: Route[] = [];
    try {
      for (const route of this.routes) {
        const retries = route.parking?.retries;
        await route.source.start(
          (messages, context) => this.deliver(route, messages, context),
          retries && ((turn) => retries.betweenBatches(turn)),
        );
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
    this.stopParkedWakeups = await this.watchParkedReleases();
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
    await this.stopParkedWakeups?.();
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
    const parked = route.parking && (await ParkedBatch.open(route.parking.rules, batch.tx ?? this.host.db, messages, decoded));
    const chain = parked ? compose(route.handler, { ...route.chainOptions, park: parked }) : route.chain;
    // In a transaction one connection serves the batch, so its messages run one at a time.
    const concurrency = batch.tx ? 1 : (route.options.concurrency ?? defaults.router.concurrency);
    const oneByOne = (items: RoutedMessage[]) =>
      runInLanes(items, concurrency, async (message) => {
        // A key with a parked message: its later messages wait behind it, unattempted.
        if (parked?.holds(message)) return parked.follow(message);
        const outcome = await chain(message, context);
        parked?.settled(message, outcome);
      });
    const handleBatch = route.options.handleBatch;
    if (!handleBatch) await oneByOne(decoded);
    else await this.deliverToBatchHandler(handleBatch, decoded, context, batch, oneByOne, parked);
    if (parked && parked.size > 0) await this.writeParked(route, parked, batch);
  }

  private async deliverToBatchHandler(
    handleBatch: NonNullable<RouteOptions['handleBatch']>,
    decoded: RoutedMessage[],
    context: HandlerContext,
    batch: SourceBatchContext,
    oneByOne: (items: RoutedMessage[]) => Promise<void>,
    parked: ParkedBatch | undefined,
  ): Promise<void> {
    // With parking, a key that is parked, or has a message that cannot be decoded (a dead letter that
    // may hold its key), keeps its order only message by message: its messages stay out of the whole batch.
    const apart = new Set(
      parked ? decoded.filter((message) => message.decodeError || parked.holds(message)).map((message) => message.key) : [],
    );
    const together = decoded.filter((message) => !message.decodeError && (message.key === null || !apart.has(message.key)));
    const taken = new Set(together);
    const started = process.hrtime.bigint();
    const whole = await wholeBatchFirst(together, {
      tx: batch.tx,
      signal: context.signal,
      logger: context.logger,
      whole: (items) => handleBatch(items, context),
      oneByOne,
    });
    if (whole) recordBatchHandled(this.metrics, context, together, Number(process.hrtime.bigint() - started) / 1e9);
    // Messages that could not be decoded go through the chain, which dead-letters them; with them, in
    // log order, the other messages kept out of the whole batch.
    await oneByOne(decoded.filter((message) => !taken.has(message)));
  }

  /**
   * Parks a batch's messages: in its transaction, or in the one that stores its checkpoint (the log
   * gives one or the other, and park is refused on other sources); then the partition looks at its
   * parked messages.
   */
  private async writeParked(route: Route, parked: ParkedBatch, batch: SourceBatchContext): Promise<void> {
    if (batch.tx) await parked.write(batch.tx);
    else if (batch.atCommit) batch.atCommit((tx) => parked.write(tx));
    else {
      throw new PostboxError(
        'POSTBOX_ERR_UNEXPECTED',
        `Route ${route.options.name}: a batch came with neither a transaction nor a checkpoint commit to park its messages in.`,
        { route: route.options.name },
      );
    }
    route.source.wakeBetweenBatches?.(batch.partition);
  }

  /**
   * Parked messages released from outside their partition's reader (an operator, a dead letter retried
   * or discarded) are announced on a channel with their group: that group's partitions look at once.
   */
  private async watchParkedReleases(): Promise<(() => Promise<void>) | undefined> {
    const parking = this.routes.filter((route) => route.parking);
    if (parking.length === 0) return undefined;
    const wake = (group?: string) => {
      for (const route of parking) if (group === undefined || route.group === group) route.source.wakeBetweenBatches?.();
    };
    return this.host.db.listen(
      defaults.parkedChannel,
      (group) => wake(group),
      () => wake(),
    );
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
