import type { PostboxMetrics } from '../observability/metrics.js';
import type { Executor } from '../sql/database.js';
import type { Handler, Middleware, OutcomeHandler } from './handler.js';
import { correlation } from './middleware/correlation.js';
import { deadLetter } from './middleware/dead-letter.js';
import { dedupe } from './middleware/dedupe.js';
import { countFailures, observe } from './middleware/observe.js';
import { type Parking, park } from './middleware/park.js';
import { recover } from './middleware/recover.js';
import { type RetryOptions, retry } from './middleware/retry.js';
import { savepoint } from './middleware/savepoint.js';
import { timeout } from './middleware/timeout.js';
import { trace } from './middleware/trace.js';

export interface ChainOptions {
  db: Executor;
  metrics?: PostboxMetrics;
  /** `false` turns retries off: one attempt. */
  retry?: RetryOptions | false;
  timeoutMs?: number;
  dedupe?: boolean;
  /** `false` lets the final error fail the batch instead (it is then redelivered, forever). */
  deadLetter?: boolean;
  /** Parks a message whose quick attempts failed, instead of failing it (a route's `park` option sets it). */
  park?: Parking;
  /** Your own middleware, applied around the handler inside every other one but recover. */
  use?: readonly Middleware[];
}

/**
 * The order, outermost first. The trace span wraps everything, so that retries and dead letters are
 * its events. Dead letter wraps retry, so a message is dead-lettered only after
 * its last attempt; park sits between them, so a message is parked once its quick attempts are
 * spent, and reaches dead letters only when parking gives up on it. Timeout sits inside retry, so
 * each attempt has its own; dedupe wraps dead letter, so a dead-lettered or parked message is not
 * remembered as handled and can be handled later.
 */
export const middlewareOrder = [
  'trace',
  'observe',
  'dedupe',
  'deadLetter',
  'park',
  'retry',
  'countFailures',
  'savepoint',
  'timeout',
  'correlation',
  'use',
  'recover',
] as const;

export type MiddlewareName = (typeof middlewareOrder)[number];

/** The middleware a chain with these options holds, outermost first. */
export function chainOf(options: ChainOptions): { name: MiddlewareName; middleware: Middleware }[] {
  const chain: { name: MiddlewareName; middleware: Middleware }[] = [];
  for (const name of middlewareOrder) {
    switch (name) {
      case 'trace':
        chain.push({ name, middleware: trace() });
        break;
      case 'observe':
        chain.push({ name, middleware: observe(options.metrics) });
        break;
      case 'dedupe':
        if (options.dedupe) chain.push({ name, middleware: dedupe(options.db) });
        break;
      case 'deadLetter':
        if (options.deadLetter !== false) chain.push({ name, middleware: deadLetter(options.db) });
        break;
      case 'park':
        if (options.park) chain.push({ name, middleware: park(options.park) });
        break;
      case 'retry':
        if (options.retry !== false) chain.push({ name, middleware: retry(options.retry ?? {}) });
        break;
      case 'countFailures':
        chain.push({ name, middleware: countFailures(options.metrics) });
        break;
      case 'savepoint':
        chain.push({ name, middleware: savepoint() });
        break;
      case 'timeout':
        if (options.timeoutMs !== undefined) chain.push({ name, middleware: timeout(options.timeoutMs) });
        break;
      case 'correlation':
        chain.push({ name, middleware: correlation() });
        break;
      case 'use':
        for (const middleware of options.use ?? []) chain.push({ name, middleware });
        break;
      case 'recover':
        chain.push({ name, middleware: recover() });
        break;
    }
  }
  return chain;
}

/** Wraps a handler in the chain; the first middleware listed is the outermost. */
export function compose(handler: Handler, options: ChainOptions): OutcomeHandler {
  const inner: OutcomeHandler = async (message, context) => {
    await handler(message, context);
    return 'handled';
  };
  return chainOf(options).reduceRight<OutcomeHandler>((next, { middleware }) => middleware(next), inner);
}
