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

/** Payloads as one JSON array; headers as one object when every row carries the same, else an array. */
function jsonColumns(rows: readonly AppendRow[]): { payloads: string; headers: string } {
  const payloads: string[] = [];
  const headers: string[] = [];
  let shared: string | undefined = rows[0]?.headersJson;
  for (const row of rows) {
    payloads.push(row.payloadJson);
    headers.push(row.headersJson);
    if (row.headersJson !== shared) shared = undefined;
  }
  return { payloads: `[${payloads.join(',')}]`, headers: shared ?? `[${headers.join(',')}]` };
}

const appendSql = 'select postbox.append($1::uuid[], $2::text[], $3::text[], $4::text[], $5::json, $6::json)';

/**
 * The write path of the outbox: appends messages to the log through postbox.append, on the caller's
 * executor, inside the caller's transaction. postbox.append is the only statement that inserts into
 * the log, from TypeScript and from SQL alike, and it holds the one rule for waking readers.
 */
export async function appendMessages(executor: Executor, rows: readonly AppendRow[]): Promise<void> {
  if (rows.length === 0) return;
  const { payloads, headers } = jsonColumns(rows);
  await executor.query(appendSql, [
    rows.map((row) => row.id),
    rows.map((row) => row.topic),
    rows.map((row) => row.type),
    rows.map((row) => row.key),
    payloads,
    headers,
  ]);
}

const streamAppendSql = `
select previous_version::text as previous_version, global_positions::text[] as global_positions,
       transaction_id::text as transaction_id, (extract(epoch from created_at) * 1000)::float8 as created_at
from postbox.append_to_stream($1::text, $2::text, $3::text, $4::uuid[], $5::text[], $6::json, $7::json)`;

interface StreamAppendRow {
  previous_version: string;
  global_positions: string[];
  transaction_id: string;
  created_at: number;
}

/**
 * The write path of the event store: postbox.append_to_stream checks the expected version, advances
 * the stream and appends the events through postbox.append in one call, so the append is atomic
 * even without a transaction. Every event is a message on the category's topic keyed by the stream
 * id; the rows' own topic and key are not used.
 */
export async function appendStreamEvents(executor: Executor, stream: StreamTarget, rows: readonly AppendRow[]): Promise<StreamAppended> {
  const { payloads, headers } = jsonColumns(rows);
  const { rows: result } = await executor.query<StreamAppendRow>(streamAppendSql, [
    stream.streamId,
    stream.category,
    stream.expected,
    rows.map((row) => row.id),
    rows.map((row) => row.type),
    payloads,
    headers,
  ]);
  const row = result[0] as StreamAppendRow;
  return {
    previousVersion: Number(row.previous_version),
    globalPositions: row.global_positions.map((position) => BigInt(position)),
    transactionId: BigInt(row.transaction_id),
    createdAt: new Date(row.created_at),
  };
}
