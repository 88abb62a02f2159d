import type { ServerResponse } from 'node:http';
import type { Database, Logger } from 'postbox';
import type { AppDefaults } from '../defaults.js';
import { logColumns, toLogItem } from './log-queries.js';

export interface FeedFilter {
  groupId?: string;
  taskId?: string;
}

interface Subscriber {
  filter: FeedFilter;
  /** Id of the last row pushed; rows with a larger id are new to this subscriber. */
  lastId: string;
  response: ServerResponse;
  pumping: boolean;
  again: boolean;
}

/**
 * New history rows as server-sent events (`event: log`, the row's id as the event id, the item
 * as data). The history consumer NOTIFYs after each batch it stores; a poll covers a missed
 * NOTIFY. The consumer is the only writer of todo_event_logs and stores one batch at a time, so
 * ids grow in commit order and "id greater than the last one pushed" never skips a row.
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

  /** Takes over the response: rows stored after `afterId` are pushed until it closes. */
  subscribe(response: ServerResponse, filter: FeedFilter, afterId: string): void {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    response.write(`retry: ${this.settings.retryMs}\n\n`);
    const subscriber: Subscriber = { filter, lastId: afterId, response, pumping: false, again: false };
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

  /** The id of the newest row: a stream that starts here pushes only rows stored from now on. */
  async currentMaxId(): Promise<string> {
    const { rows } = await this.db.query<{ max_id: string }>('select coalesce(max(id), 0)::text as max_id from todo_event_logs');
    return rows[0]?.max_id ?? '0';
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
    const params: unknown[] = [subscriber.lastId];
    let where = 'l.id > $1::bigint';
    if (subscriber.filter.groupId !== undefined) where += ` and l.group_id = $${params.push(subscriber.filter.groupId)}`;
    if (subscriber.filter.taskId !== undefined) where += ` and l.task_id = $${params.push(subscriber.filter.taskId)}`;
    const { rows } = await this.db.query(
      `select ${logColumns} from todo_event_logs l where ${where} order by l.id limit $${params.push(this.settings.maxRowsPerPush)}`,
      params,
    );
    if (!this.subscribers.has(subscriber)) return 0;
    for (const row of rows) {
      const item = toLogItem(row);
      subscriber.response.write(`id: ${item.id}\nevent: log\ndata: ${JSON.stringify(item)}\n\n`);
      subscriber.lastId = String(row.id);
    }
    return rows.length;
  }
}
