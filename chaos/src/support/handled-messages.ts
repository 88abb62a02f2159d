import type { Executor, MessageHeaders } from 'postbox';
import { tally } from './delivery-count.js';

/** An effect row with its message as the log holds it. Times are epoch milliseconds on the server's clock, with their fraction. */
export interface HandledMessage {
  id: string;
  key: string | null;
  payload: unknown;
  headers: MessageHeaders;
  /** When its message entered the log (for a delayed message or a tick, when the timekeeper put it there). */
  loggedMs: number;
  /** When the handler wrote its effect row. */
  handledMs: number;
}

/** The effect rows (chaos_effects) of a topic's messages, in the order they were written: the order of handling. */
export async function handledMessages(db: Executor, topic: string): Promise<HandledMessage[]> {
  const { rows } = await db.query<{
    id: string;
    key: string | null;
    payload: unknown;
    headers: MessageHeaders;
    logged_ms: number;
    handled_ms: number;
  }>(
    `select e.message_id::text as id, m.key, m.payload, m.headers,
            (extract(epoch from m.created_at) * 1000)::float8 as logged_ms, (extract(epoch from e.recorded_at) * 1000)::float8 as handled_ms
     from chaos_effects e join postbox.messages m using (message_id)
     where m.topic = $1
     order by e.recorded_at`,
    [topic],
  );
  return rows.map((row) => ({
    id: row.id,
    key: row.key,
    payload: row.payload,
    headers: row.headers,
    loggedMs: Number(row.logged_ms),
    handledMs: Number(row.handled_ms),
  }));
}

/** How many effect rows each message id has among these. */
export function effectCounts(handled: readonly HandledMessage[]): Map<string, number> {
  return tally(handled.map((message) => message.id));
}
