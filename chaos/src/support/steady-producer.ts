import type { Executor, OutgoingMessage, Postbox } from 'postbox';
import { delay } from './wait.js';

/** The business table the producer writes in the same transaction as its outbox messages. */
export const producedTable = 'chaos_orders';

export async function createProducedTable(db: Executor): Promise<void> {
  await db.query(
    `create table if not exists ${producedTable} (
       message_id uuid primary key,
       topic text not null,
       produced_at timestamptz not null default now()
     )`,
  );
}

export interface SteadyProducerOptions {
  postbox: Postbox;
  topic: string;
  messagesPerSecond: number;
  messagesPerTransaction: number;
  /** The message with this sequence number (0, 1, 2...), on `topic`. */
  message(sequence: number): OutgoingMessage;
}

/**
 * Publishes at a steady rate through the outbox: each transaction inserts one business row per
 * message into chaos_orders and enqueues the messages, so a message exists if and only if its
 * business row committed. It runs until stop(); a failed transaction is counted and the next goes on.
 */
export class SteadyProducer {
  private sequence = 0;
  private running = false;
  private loop: Promise<void> | undefined;
  private committedCount = 0;
  private failedCount = 0;
  private lastErrorText: string | undefined;

  constructor(private readonly options: SteadyProducerOptions) {}

  /** Messages in transactions that committed. */
  get committed(): number {
    return this.committedCount;
  }

  get failedTransactions(): number {
    return this.failedCount;
  }

  get lastError(): string | undefined {
    return this.lastErrorText;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private async run(): Promise<void> {
    const { postbox, messagesPerSecond, messagesPerTransaction } = this.options;
    const intervalMs = (1000 * messagesPerTransaction) / messagesPerSecond;
    let next = performance.now();
    while (this.running) {
      const messages = Array.from({ length: messagesPerTransaction }, () => this.options.message(this.sequence++));
      try {
        await postbox.transaction(async (tx) => {
          const ids = await postbox.enqueue(tx, messages);
          await tx.query(`insert into ${producedTable} (message_id, topic) select unnest($1::uuid[]), $2`, [ids, this.options.topic]);
        });
        this.committedCount += messages.length;
      } catch (error) {
        this.failedCount += 1;
        this.lastErrorText = error instanceof Error ? error.message : String(error);
      }
      next += intervalMs;
      const now = performance.now();
      // A producer that fell behind (a slow machine) keeps its pace from now on rather than bursting.
      if (next < now - 1_000) next = now;
      await delay(Math.max(0, next - now));
    }
  }
}

/** Ids of the messages whose business rows committed, on one topic: what was really sent. */
export async function producedIds(db: Executor, topic: string): Promise<string[]> {
  const { rows } = await db.query<{ message_id: string }>(`select message_id::text as message_id from ${producedTable} where topic = $1`, [
    topic,
  ]);
  return rows.map((row) => row.message_id);
}

/**
 * Business rows without their outbox message and messages without their business row, on one
 * topic: both must be 0, or the write was not one transaction.
 */
export async function outboxMismatch(db: Executor, topic: string): Promise<{ rowsWithoutMessage: number; messagesWithoutRow: number }> {
  const { rows } = await db.query<{ without_message: number; without_row: number }>(
    `select
       (select count(*)::int from ${producedTable} o where o.topic = $1
          and not exists (select 1 from postbox.messages m where m.message_id = o.message_id)) as without_message,
       (select count(*)::int from postbox.messages m where m.topic = $1
          and not exists (select 1 from ${producedTable} o where o.message_id = m.message_id)) as without_row`,
    [topic],
  );
  return { rowsWithoutMessage: Number(rows[0]?.without_message ?? 0), messagesWithoutRow: Number(rows[0]?.without_row ?? 0) };
}
