import type { Executor } from 'postbox';
import { appDefaults } from '../defaults.js';
import type { HistoryRow } from './history-row.js';

/**
 * One statement, one round trip per batch. It records the message ids, of which only the new ones
 * come back; inserts only their rows, in batch order; and notifies the live feed when it stored
 * any. A redelivered message therefore adds no row, and the ids and rows commit together (with the
 * checkpoint of the consumer's partition, in its transaction). Writers do not take turns: the
 * partitions of the history group write in parallel, so ids do not grow in commit order, and the
 * live feed reads by each row's transaction_id (filled in by its default) below the watermark
 * instead. The columns come as arrays and the events as one JSON array, split as json text, so
 * that the server parses each event into jsonb only once.
 */
const insertBatch = `
with fresh as (
  insert into todo_event_log_ids (message_id)
  select message_id from unnest($2::text[]) as message_id
  on conflict (message_id) do nothing
  returning message_id
),
stored as (
  insert into todo_event_logs (
    "timestamp", timestamp_fallback, event_type, entity, entity_id, group_id, group_name, task_id, task_name,
    changes, user_name, workspace, event_data, message_id, source_topic, source_partition, source_offset)
  select r."timestamp", r.timestamp_fallback, r.event_type, r.entity, r.entity_id, r.group_id, r.group_name, r.task_id,
    r.task_name, r.changes, r.user_name, r.workspace, r.event_data::jsonb, r.message_id, r.source_topic, r.source_partition,
    r.source_offset
  from rows from (
    unnest($2::text[], $3::timestamptz[], $4::boolean[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
           $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::integer[], $17::bigint[]),
    json_array_elements($18::json)
  ) with ordinality as r(
    message_id, "timestamp", timestamp_fallback, event_type, entity, entity_id, group_id, group_name, task_id, task_name,
    changes, user_name, workspace, source_topic, source_partition, source_offset, event_data, ord)
  where r.message_id in (select message_id from fresh)
  order by r.ord
  returning 1
)
select count(*)::int as stored, case when count(*) > 0 then pg_notify($1, count(*)::text) end as notified
from stored`;

/** The first row of each message id, in batch order: a batch that holds a message twice stores it once. */
function firstOfEachMessage(rows: readonly HistoryRow[]): readonly HistoryRow[] {
  const seen = new Set<string>();
  const unique = rows.filter((row) => !seen.has(row.message_id) && Boolean(seen.add(row.message_id)));
  return unique.length === rows.length ? rows : unique;
}

/** The array parameters $2 to $17, in the order of the statement's unnest. */
export const arrayColumns = [
  'message_id',
  'timestamp',
  'timestamp_fallback',
  'event_type',
  'entity',
  'entity_id',
  'group_id',
  'group_name',
  'task_id',
  'task_name',
  'changes',
  'user_name',
  'workspace',
  'source_topic',
  'source_partition',
  'source_offset',
] as const satisfies readonly (keyof HistoryRow)[];

const needsEscape = /["\\]/;

/** A PostgreSQL array literal, written here because the driver escapes every element, needed or not. */
export function arrayLiteral(values: readonly (string | number | boolean | null)[]): string {
  let literal = '{';
  for (let i = 0; i < values.length; i++) {
    const value = values[i] ?? null;
    if (i > 0) literal += ',';
    if (value === null) literal += 'NULL';
    else if (typeof value !== 'string') literal += String(value);
    else literal += `"${needsEscape.test(value) ? value.replace(/["\\]/g, '\\$&') : value}"`;
  }
  return `${literal}}`;
}

function batchParameters(rows: readonly HistoryRow[]): unknown[] {
  const columns = arrayColumns.map((column) => arrayLiteral(rows.map((row) => row[column])));
  const events = `[${rows.map((row) => row.event_data).join(',')}]`;
  return [appDefaults.notifyChannel, ...columns, events];
}

/**
 * Stores a batch of rows, skipping messages already stored; returns how many rows were added.
 * Writers (the consumer's partitions and a dead-letter retry) run side by side; a message id is
 * stored once whichever commits first, since the ids' primary key makes the other wait and skip it.
 */
export async function writeHistory(tx: Executor, rows: readonly HistoryRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  const { rows: result } = await tx.query<{ stored: number }>(insertBatch, batchParameters(firstOfEachMessage(rows)));
  return result[0]?.stored ?? 0;
}
