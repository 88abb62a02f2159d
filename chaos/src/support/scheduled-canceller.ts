import type { Executor, Postbox } from 'postbox';
import { delay } from './wait.js';

/** Which waiting message a round cancels: one at random, or the soonest due (racing its move). */
const pickers = [
  'select message_id::text as id from postbox.scheduled_messages where topic = $1 order by random() limit 1',
  'select message_id::text as id from postbox.scheduled_messages where topic = $1 order by due_at, seq limit 1',
] as const;

/** The delayed messages whose cancel committed: each is recorded in the cancel's own transaction. */
export async function createCancelledTable(db: Executor): Promise<void> {
  await db.query('create table chaos_cancelled (message_id uuid primary key, cancelled_at timestamptz not null default clock_timestamp())');
}

/** Ids of the messages whose cancel committed. */
export async function cancelledIds(db: Executor): Promise<string[]> {
  const { rows } = await db.query<{ message_id: string }>('select message_id::text as message_id from chaos_cancelled');
  return rows.map((row) => row.message_id);
}

export interface ScheduledCancellerOptions {
  postbox: Postbox;
  topic: string;
  cancelsPerSecond: number;
}

/**
 * Cancels waiting messages of a topic at a steady rate until stop(): every other one chosen at
 * random among those waiting, the others the soonest due, so that cancels race the timekeeper's
 * move. A cancel that finds the message already moved is counted as too late (the message is then
 * delivered like any other); one that took it off the waiting list is recorded with it, atomically.
 */
export class ScheduledCanceller {
  cancelled = 0;
  tooLate = 0;
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly options: ScheduledCancellerOptions) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private async run(): Promise<void> {
    const { postbox, topic, cancelsPerSecond } = this.options;
    for (let round = 0; this.running; round++) {
      await delay(1_000 / cancelsPerSecond);
      const { rows } = await postbox.db.query<{ id: string }>(pickers[round % pickers.length] as string, [topic]);
      const id = rows[0]?.id;
      if (!id) continue;
      const cancelled = await postbox.transaction(async (tx) => {
        if (!(await postbox.cancelScheduled(id, tx))) return false;
        await tx.query('insert into chaos_cancelled (message_id) values ($1)', [id]);
        return true;
      });
      if (cancelled) this.cancelled += 1;
      else this.tooLate += 1;
    }
  }
}
