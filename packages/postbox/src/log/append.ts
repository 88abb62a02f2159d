import { defaults } from '../config/defaults.js';
import type { PreparedMessage } from '../outbox/validate.js';
import type { Executor } from '../sql/database.js';

/** A prepared message, optionally placed in an event stream. */
export interface AppendRow extends PreparedMessage {
  streamId?: string;
  streamPosition?: bigint;
}

/**
 * Appends the rows as the next events of one stream: postbox.advance_stream checks the expected
 * version and advances the stream in the same statement that inserts them, so the append is atomic
 * even without a transaction. The rows' own streamId and streamPosition are ignored.
 */
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

// One statement for any batch size: arrays keep it a single prepared plan, and the NOTIFY rides
// in the same statement so that it is delivered exactly when the caller's transaction commits.
const appendSql = `
with inserted as (
  insert into postbox.messages (message_id, topic, type, key, payload, headers, stream_id, stream_position)
  select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[], $7::text[], $8::bigint[])
  returning topic
)
select pg_notify('${defaults.notifyChannel}', topic) from (select distinct topic from inserted) as t`;

const streamAppendSql = `
with base as materialized (
  select postbox.advance_stream($7::text, $8::text, $9::text, cardinality($1::uuid[])) as version
),
inserted as (
  insert into postbox.messages (message_id, topic, type, key, payload, headers, stream_id, stream_position)
  select r.id, r.topic, r.type, r.key, r.payload, r.headers, $7::text, b.version + r.ord
  from base b
  cross join unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[])
    with ordinality as r(id, topic, type, key, payload, headers, ord)
  order by r.ord
  returning global_position, transaction_id, stream_position, created_at, topic
)
select (select version from base)::text as previous_version,
       array_agg(i.global_position::text order by i.stream_position) as global_positions,
       min(i.transaction_id::text) as transaction_id,
       min(i.created_at) as created_at,
       (select count(pg_notify('${defaults.notifyChannel}', t.topic)) from (select distinct topic from inserted) as t) as notified
from inserted i`;

interface StreamAppendRow {
  previous_version: string;
  global_positions: string[];
  transaction_id: string;
  created_at: Date | string;
}

/**
 * The single write path to the log. Runs on the caller's executor, inside the caller's transaction.
 * With a stream target, the rows become the stream's next events (see StreamTarget).
 */
export async function appendToLog(executor: Executor, rows: readonly AppendRow[]): Promise<undefined>;
export async function appendToLog(executor: Executor, rows: readonly AppendRow[], stream: StreamTarget): Promise<StreamAppended>;
export async function appendToLog(
  executor: Executor,
  rows: readonly AppendRow[],
  stream?: StreamTarget,
): Promise<StreamAppended | undefined> {
  if (rows.length === 0 && !stream) return;
  const columns: unknown[][] = stream ? [[], [], [], [], [], []] : [[], [], [], [], [], [], [], []];
  for (const row of rows) {
    columns[0]?.push(row.id);
    columns[1]?.push(row.topic);
    columns[2]?.push(row.type);
    columns[3]?.push(row.key);
    columns[4]?.push(row.payloadJson);
    columns[5]?.push(row.headersJson);
    if (stream) continue;
    columns[6]?.push(row.streamId ?? null);
    columns[7]?.push(row.streamPosition === undefined ? null : String(row.streamPosition));
  }
  if (!stream) {
    await executor.query(appendSql, columns);
    return;
  }
  const { rows: result } = await executor.query<StreamAppendRow>(streamAppendSql, [
    ...columns,
    stream.streamId,
    stream.category,
    stream.expected,
  ]);
  const row = result[0] as StreamAppendRow;
  return {
    previousVersion: Number(row.previous_version),
    globalPositions: row.global_positions.map((position) => BigInt(position)),
    transactionId: BigInt(row.transaction_id),
    createdAt: row.created_at instanceof Date ? row.created_at : new Date(row.created_at),
  };
}
