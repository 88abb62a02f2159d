import type { Executor } from 'postbox';
import { appDefaults } from '../defaults.js';
import type { HistoryRow } from './history-row.js';

/**
 * One statement per batch. It records the message ids first; only the ids that were new come
 * back, and only their rows are inserted. A redelivered message therefore adds no row, and the
 * ids and rows commit together (with the consumer's checkpoint, in its transaction).
 */
const insertBatch = `
with incoming as (
  select distinct on (r.message_id) r.*
  from jsonb_to_recordset($1::jsonb) as r(
    message_id text, "timestamp" timestamptz, timestamp_fallback boolean, event_type text, entity text, entity_id text,
    group_id text, group_name text, task_id text, task_name text, changes text, user_name text, workspace text,
    event_data jsonb, source_topic text, source_partition integer, source_offset bigint, ord integer)
  order by r.message_id, r.ord
),
fresh as (
  insert into todo_event_log_ids (message_id)
  select message_id from incoming
  on conflict (message_id) do nothing
  returning message_id
)
insert into todo_event_logs (
  "timestamp", timestamp_fallback, event_type, entity, entity_id, group_id, group_name, task_id, task_name,
  changes, user_name, workspace, event_data, message_id, source_topic, source_partition, source_offset)
select i."timestamp", i.timestamp_fallback, i.event_type, i.entity, i.entity_id, i.group_id, i.group_name, i.task_id, i.task_name,
  i.changes, i.user_name, i.workspace, i.event_data, i.message_id, i.source_topic, i.source_partition, i.source_offset
from incoming i
join fresh f on f.message_id = i.message_id
order by i.ord`;

/**
 * Stores a batch of rows, skipping messages already stored; returns how many rows were added.
 * Writers (the consumer and a dead-letter retry) take turns, so ids grow in commit order.
 */
export async function writeHistory(tx: Executor, rows: readonly HistoryRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  await tx.query('select pg_advisory_xact_lock($1)', [appDefaults.historyWriterLockKey]);
  const { rowCount } = await tx.query(insertBatch, [JSON.stringify(rows.map((row, ord) => ({ ...row, ord })))]);
  if (rowCount > 0) await tx.query('select pg_notify($1, $2)', [appDefaults.notifyChannel, String(rowCount)]);
  return rowCount;
}
