import type { ServerResponse } from 'node:http';
import type { Database, Logger } from 'postbox';
import type { AppDefaults } from '../defaults.js';
import { encodeFeedCursor, type FeedCursor } from './cursor.js';
import { logColumns, toLogItem } from './log-queries.js';

export interface FeedFilter {
  groupId?: string;
  taskId?: string;
}

interface Subscriber {
  filter: FeedFilter;
  /** The last row pushed, as (transaction_id, id); rows after it in that order are new to this subscriber. */
  last: FeedCursor;
  response: ServerResponse;
  pumping: boolean;
  again: boolean;
}

/**
 * New history rows as server-sent events (`event: log`, the row's feed cursor `<transaction_id>.<id>`
 * as the event id, the item as data). The history consumer NOTIFYs after each batch it stores; a
 * poll covers a missed NOTIFY and a watermark held back by a long transaction.
 *
 * The partitions of the history consumer write in parallel, so ids do not grow in commit order: a
 * reader that remembered "last id = 42" would pass an id-41 row that commits later. The feed reads
 * as Postbox's log does: rows in (transaction_id, id) order, and only those whose transaction is
 * older than every transaction still running (below pg_snapshot_xmin), which are all committed or
 * gone; a transaction still running, even one that started first, is waited for.
 */
export class LiveFeed {
  private readonly subscribers = new Set<Subscriber>();
  private unlisten: (() => Promise<void>) | undefined;
  private poll: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Database,
    private readonly settings: AppDefaults['stream'] & { channel: string },
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.unlisten = await this.db.listen(this.settings.channel, () => this.wakeAll());
    this.poll = setInterval(() => this.wakeAll(), this.settings.pollIntervalMs);
    this.poll.unref();
    this.heartbeat = setInterval(() => {
      for (const subscriber of this.subscribers) subscriber.response.write(': keep-alive\n\n');
    }, this.settings.heartbeatMs);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.subscribers.size;
  }

  /** Takes over the response: rows after `after` in feed order are pushed until it closes. */
  subscribe(response: ServerResponse, filter: FeedFilter, after: FeedCursor): void {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    response.write(`retry: ${this.settings.retryMs}\n\n`);
    const subscriber: Subscriber = { filter, last: after, response, pumping: false, again: false };
    this.subscribers.add(subscriber);
    response.on('close', () => this.subscribers.delete(subscriber));
    void this.pump(subscriber);
  }

  /** Ends every stream; browsers reconnect to another instance or after the restart. */
  async close(): Promise<void> {
    clearInterval(this.poll);
    clearInterval(this.heartbeat);
    for (const subscriber of this.subscribers) subscriber.response.end();
    this.subscribers.clear();
    const unlisten = this.unlisten;
    this.unlisten = undefined;
    await unlisten?.().catch(() => undefined);
  }

  /**
   * Where a stream that starts now begins: after every row below the watermark. Rows of
   * transactions that have not passed it yet (still running, or committed just now while an older
   * one runs) are pushed when they do.
   */
  async currentCursor(): Promise<FeedCursor> {
    const { rows } = await this.db.query<{ xmin: string }>('select pg_snapshot_xmin(pg_current_snapshot())::text as xmin');
    return { transactionId: rows[0]?.xmin ?? '0', id: '0' };
  }

  private wakeAll(): void {
    for (const subscriber of this.subscribers) void this.pump(subscriber);
  }

  private async pump(subscriber: Subscriber): Promise<void> {
    if (subscriber.pumping) {
      subscriber.again = true;
      return;
    }
    subscriber.pumping = true;
    try {
      do {
        subscriber.again = false;
        const count = await this.push(subscriber);
        if (count >= this.settings.maxRowsPerPush) subscriber.again = true;
      } while (subscriber.again && this.subscribers.has(subscriber));
    } catch (error) {
      this.logger.warn({ err: error }, 'live feed read failed; it is tried again at the next poll');
    } finally {
      subscriber.pumping = false;
    }
  }

  private async push(subscriber: Subscriber): Promise<number> {
    const { last, filter } = subscriber;
    const params: unknown[] = [last.transactionId, last.id];
    let where = '(l.transaction_id, l.id) > ($1::xid8, $2::bigint) and l.transaction_id < pg_snapshot_xmin(pg_current_snapshot())';
    if (filter.groupId !== undefined) where += ` and l.group_id = $${params.push(filter.groupId)}`;
    if (filter.taskId !== undefined) where += ` and l.task_id = $${params.push(filter.taskId)}`;
    const { rows } = await this.db.query(
      `select ${logColumns}, l.transaction_id::text as transaction_id from todo_event_logs l where ${where}
       order by l.transaction_id, l.id limit $${params.push(this.settings.maxRowsPerPush)}`,
      params,
    );
    if (!this.subscribers.has(subscriber)) return 0;
    for (const row of rows) {
      const cursor: FeedCursor = { transactionId: String(row.transaction_id), id: String(row.id) };
      subscriber.response.write(`id: ${encodeFeedCursor(cursor)}\nevent: log\ndata: ${JSON.stringify(toLogItem(row))}\n\n`);
      subscriber.last = cursor;
    }
    return rows.length;
  }
}
