import { defaults } from '../config/defaults.js';
import type { PreparedMessage } from '../outbox/validate.js';
import type { Executor } from '../sql/database.js';

/** A prepared message, optionally placed in an event stream. */
export interface AppendRow extends PreparedMessage {
  streamId?: string;
  streamPosition?: bigint;
}

/**
 * Appends the rows as the next events of one stream: postbox.append_to_stream checks the expected
 * version, advances the stream and inserts the events in one call, so the append is atomic even
 * without a transaction. A single event on a connection that prepares statements takes one plain
 * statement that does the same (singleEventAppendSql). Every row is a message on the category's
 * topic keyed by the stream id; the rows' own topic, key, streamId and streamPosition are ignored.
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
select previous_version::text as previous_version, global_positions::text[] as global_positions,
       transaction_id::text as transaction_id, (extract(epoch from created_at) * 1000)::float8 as created_at
from postbox.append_to_stream($1::text, $2::text, $3::text, $4::json, $5::json, $6::json, $7::json, $8::text)`;

/**
 * One event, the usual append of a command handler, as one plain statement: it advances the stream
 * under the version condition and inserts the event in a single executor run, where the function
 * above runs a PL/pgSQL call and its statements, a sort and an aggregate. The stream row is written
 * only for 'any', 'no_stream' and 0, or when it already exists, so that an exact version or
 * 'stream_exists' never creates one. When the condition fails, postbox.refuse_append raises the
 * same error as postbox.advance_stream, so a refusal aborts the caller's transaction as before.
 */
const singleEventAppendSql = `
with advanced as (
  insert into postbox.streams as s (stream_id, category, version)
  select $1::text, $2::text, 1
  where $3::text in ('any', 'no_stream', '0') or exists (select from postbox.streams e where e.stream_id = $1::text)
  on conflict (stream_id) do update set version = s.version + 1, updated_at = now()
  where s.state = 'active' and case $3::text
      when 'any' then true
      when 'stream_exists' then s.version > 0
      when 'no_stream' then s.version = 0
      else s.version = $3::text::bigint
    end
  returning s.version - 1 as previous_version
)
insert into postbox.messages (message_id, topic, type, key, payload, headers, stream_id, stream_position)
select $4::uuid, $2::text, $5::text, $1::text, $6::jsonb, $7::jsonb, $1::text, checked.previous_version + 1
from (select coalesce((select previous_version from advanced), postbox.refuse_append($1::text, $3::text)) as previous_version) as checked
returning (stream_position - 1)::text as previous_version, array[global_position::text] as global_positions,
  pg_current_xact_id()::text as transaction_id, (extract(epoch from created_at) * 1000)::float8 as created_at,
  -- A wake-up only when a leased reader of the category waits for one, as in postbox.append_to_stream.
  (select pg_notify($8::text, $2::text)
   where exists (select from postbox.consumer_groups g where $2::text = any(g.topics) and g.lease_expires_at > now()))::text as woken`;

interface StreamAppendRow {
  previous_version: string;
  global_positions: string[];
  transaction_id: string;
  created_at: number | string;
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
  if (stream) return appendToStreamRows(executor, rows, stream);
  if (rows.length === 0) return;
  const columns: unknown[][] = [[], [], [], [], [], [], [], []];
  for (const row of rows) {
    columns[0]?.push(row.id);
    columns[1]?.push(row.topic);
    columns[2]?.push(row.type);
    columns[3]?.push(row.key);
    columns[4]?.push(row.payloadJson);
    columns[5]?.push(row.headersJson);
    columns[6]?.push(row.streamId ?? null);
    columns[7]?.push(row.streamPosition === undefined ? null : String(row.streamPosition));
  }
  await executor.query(appendSql, columns);
}

async function appendToStreamRows(executor: Executor, rows: readonly AppendRow[], stream: StreamTarget): Promise<StreamAppended> {
  // Unprepared, the statement's planning would cost more than the function call it saves, whose
  // PL/pgSQL keeps its plans per connection.
  const single = rows.length === 1 && executor.preparesStatements ? rows[0] : undefined;
  if (single) {
    const { rows: result } = await executor.query<StreamAppendRow>(singleEventAppendSql, [
      stream.streamId,
      stream.category,
      stream.expected,
      single.id,
      single.type,
      single.payloadJson,
      single.headersJson,
      defaults.notifyChannel,
    ]);
    return streamAppended(result[0] as StreamAppendRow);
  }
  const ids: string[] = [];
  const types: string[] = [];
  const payloads: string[] = [];
  const headers: string[] = [];
  let sharedHeaders: string | undefined = rows[0]?.headersJson;
  for (const row of rows) {
    ids.push(row.id);
    types.push(row.type);
    payloads.push(row.payloadJson);
    headers.push(row.headersJson);
    if (row.headersJson !== sharedHeaders) sharedHeaders = undefined;
  }
  const { rows: result } = await executor.query<StreamAppendRow>(streamAppendSql, [
    stream.streamId,
    stream.category,
    stream.expected,
    JSON.stringify(ids),
    JSON.stringify(types),
    `[${payloads.join(',')}]`,
    sharedHeaders ?? `[${headers.join(',')}]`,
    defaults.notifyChannel,
  ]);
  return streamAppended(result[0] as StreamAppendRow);
}

function streamAppended(row: StreamAppendRow): StreamAppended {
  return {
    previousVersion: Number(row.previous_version),
    globalPositions: row.global_positions.map((position) => BigInt(position)),
    transactionId: BigInt(row.transaction_id),
    createdAt: new Date(Number(row.created_at)),
  };
}
