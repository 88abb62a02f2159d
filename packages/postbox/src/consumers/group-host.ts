import type { Logger } from '../observability/logger.js';
import type { Database } from '../sql/database.js';
import type { Consumer, ConsumerOptions } from './consumer.js';

/**
 * What a reader of the log (a router, a projection, the Kafka relay) needs from the Postbox that
 * runs it: the database, its logger, and consumer groups that stop when it closes. Postbox is one.
 */
export interface GroupHost {
  readonly db: Database;
  readonly logger: Logger;
  /** True once the host began to close: readers start nothing new then. */
  readonly isClosed: boolean;
  /** A consumer for a group, with the host's defaults; the host stops it when it closes. */
  consumer(options: ConsumerOptions): Consumer;
}
