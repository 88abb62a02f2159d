import type { Executor } from '../sql/database.js';

/** A message checked and serialised, ready to be appended. */
export interface AppendRow {
  id: string;
  topic: string;
  type: string;
  key: string | null;
  payloadJson: string;
  headersJson: string;
}

/** Where the events of a stream append go: the stream, its category (the topic) and the version expected. */
export interface StreamTarget {
  streamId: string;
  category: string;
  /** 'any', 'no_stream', 'stream_exists', or a version in decimal digits. */
  expected: string;
}

/** Where a stream append landed. */
export interface StreamAppended {
  /** The stream's version before the append; the events hold the positions after it, in order. */
  previousVersion: number;
  globalPositions: bigint[];
  transactionId: bigint;
  createdAt: Date;
}

/**
 * One row as the JSON object postbox.append reads: the payload and headers are the JSON the caller
 * already serialised, joined as they are, so the server parses each payload once. `extra` holds
 * more members, already JSON (`"due_at":"…"` for a scheduled message).
 */
export function messageJson(row: AppendRow, extra?: string): string {
  const key = row.key === null ? 'null' : JSON.stringify(row.key);
  return `{"id":"${row.id}","topic":${JSON.stringify(row.topic)},"type":${JSON.stringify(row.type)},"key":${key},"payload":${row.payloadJson},"headers":${row.headersJson}${extra ? `,${extra}` : ''}}`;
}

/** The rows as the JSON array postbox.append reads. */
function rowsJson(rows: readonly AppendRow[]): string {
  return `[${rows.map((row) => messageJson(row)).join(',')}]`;
}

const appendSql = 'select from postbox.append($1::jsonb)';

/**
 * The write path of the outbox: appends messages to the log through postbox.append, on the caller's
 * executor, inside the caller's transaction. postbox.append is the only statement that inserts into
 * the log, from TypeScript and from SQL alike, and it holds the one rule for waking readers.
 */
export async function appendMessages(executor: Executor, rows: readonly AppendRow[]): Promise<void> {
  if (rows.length === 0) return;
  await executor.query(appendSql, [rowsJson(rows)]);
}

const appendOnceSql = 'select cardinality(global_positions) as appended from postbox.append($1::jsonb, p_skip_existing => true)';

/**
 * Appends the messages whose ids the log does not hold yet, and leaves out the others; returns how
 * many it appended. For writers that may offer one message twice (the timekeeper's ticks): the log's
 * unique id is what makes each appear once.
 */
export async function appendMessagesOnce(executor: Executor, rows: readonly AppendRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  const { rows: result } = await executor.query<{ appended: number }>(appendOnceSql, [rowsJson(rows)]);
  return Number(result[0]?.appended ?? 0);
}

const streamAppendSql = `
select previous_version::text as previous_version, global_positions::text[] as global_positions,
       pg_current_xact_id()::text as transaction_id, (extract(epoch from now()) * 1000)::float8 as created_at
from postbox.append($1::jsonb, $2::text, $3::text, $4::text)`;

interface StreamAppendRow {
  previous_version: string;
  global_positions: string[];
  transaction_id: string;
  created_at: number;
}

/**
 * The write path of the event store, the same postbox.append: with a stream it checks the expected
 * version, advances the stream and appends the events in one call, so the append is atomic even
 * without a transaction. Every event is a message on the category's topic keyed by the stream id;
 * the rows' own topic and key are not used. created_at is the transaction's start, the column's default.
 */
export async function appendStreamEvents(executor: Executor, stream: StreamTarget, rows: readonly AppendRow[]): Promise<StreamAppended> {
  const { rows: result } = await executor.query<StreamAppendRow>(streamAppendSql, [
    rowsJson(rows),
    stream.streamId,
    stream.category,
    stream.expected,
  ]);
  const row = result[0] as StreamAppendRow;
  return {
    previousVersion: Number(row.previous_version),
    globalPositions: row.global_positions.map((position) => BigInt(position)),
    transactionId: BigInt(row.transaction_id),
    createdAt: new Date(row.created_at),
  };
}
