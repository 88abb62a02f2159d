import type { Executor } from 'postbox';

/** The tables processes/ordered-writers.ts fills at the end: what committed per key, and its counters. */
export async function createWriterTables(db: Executor): Promise<void> {
  await db.query('create table chaos_writer_totals (key text primary key, committed int not null)');
  await db.query('create table chaos_writer_stats (name text primary key, value bigint not null)');
}

export interface WriterTotals {
  /** Each key's number of committed messages: its sequence numbers 1..n reached the log. */
  committed: Map<string, number>;
  /** transactions, rolledBack, rolledBackMessages, committedMessages, committedAheadOfOlder. */
  stats: Record<string, number>;
}

/** What the writers committed, once they have printed "done". */
export async function writerTotals(db: Executor): Promise<WriterTotals> {
  const totals = await db.query<{ key: string; committed: number }>('select key, committed from chaos_writer_totals');
  const stats = await db.query<{ name: string; value: string }>('select name, value::text from chaos_writer_stats');
  return {
    committed: new Map(totals.rows.map((row) => [row.key, Number(row.committed)])),
    stats: Object.fromEntries(stats.rows.map((row) => [row.name, Number(row.value)])),
  };
}
