import { defaults } from '../config/defaults.js';
import type { PreparedMessage } from '../outbox/validate.js';
import type { Executor } from '../sql/database.js';

/** A prepared message, optionally placed in an event stream. */
export interface AppendRow extends PreparedMessage {
  streamId?: string;
  streamPosition?: bigint;
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

/** The single write path to the log. Runs on the caller's executor, inside the caller's transaction. */
export async function appendToLog(executor: Executor, rows: readonly AppendRow[]): Promise<void> {
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
