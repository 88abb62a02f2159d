import type { Executor } from '../sql/database.js';
import { type LogMessage, type MessageRow, messageColumns, toLogMessage } from './message.js';
import { type StreamRow, streamColumns } from './streams.js';

/** A row of postbox.snapshots as the start of a load reads it. */
export interface SnapshotRow {
  version: string | number;
  schema_version: number;
  state: unknown;
  /** False when the stored state no longer matches the checksum written with it. */
  intact: boolean;
  global_position: string | number;
  event_created_at: Date | string;
  created_at: Date | string;
}

export interface StreamStart {
  stream: StreamRow | undefined;
  snapshot: SnapshotRow | undefined;
  /** The version the head starts after: the snapshot's when the database found it usable, else 0. */
  headAfter: number;
  /** The first page of events after headAfter. */
  head: LogMessage[];
}

const startSql = `
with s as (select ${streamColumns} from postbox.streams where stream_id = $1),
p as (
  select version, schema_version, state, md5(state::text) = checksum as intact, global_position, event_created_at, created_at
  from postbox.snapshots where stream_id = $1 and name = $2
),
h as (
  select (select row_to_json(s) from s) as stream,
         (select json_build_object('version', p.version::text, 'schema_version', p.schema_version, 'state', p.state, 'intact', p.intact,
                                   'global_position', p.global_position::text, 'event_created_at', p.event_created_at, 'created_at', p.created_at)
          from p) as snapshot,
         coalesce((select p.version from p, s where p.intact and p.schema_version = $3 and p.version <= s.version), 0) as head_after
)
select case when e.stream_position is null or e.stream_position = h.head_after + 1 then h.stream end as stream_row,
       case when e.stream_position is null or e.stream_position = h.head_after + 1 then h.snapshot end as snapshot_row,
       h.head_after, e.*
from h
left join lateral (
  select ${messageColumns}
  from postbox.messages m
  where m.stream_id = $1 and m.stream_position > h.head_after
  order by m.stream_position
  limit $4
) e on true`;

type StartRow = Partial<MessageRow> & { stream_row: StreamRow | null; snapshot_row: SnapshotRow | null; head_after: string | number };

/**
 * The start of a stream load, in one round trip: the stream's row, its snapshot for one aggregate
 * (when a name is given), and the first page of events after the snapshot if it is usable (intact,
 * of this schema version, not ahead of the stream), else from the beginning.
 */
export async function readStreamStart(
  db: Executor,
  streamId: string,
  snapshot: { name: string; schemaVersion: number } | undefined,
  limit: number,
): Promise<StreamStart> {
  const { rows } = await db.query<StartRow>(startSql, [streamId, snapshot?.name ?? null, snapshot?.schemaVersion ?? 0, limit]);
  const first = rows[0];
  return {
    stream: first?.stream_row ?? undefined,
    snapshot: first?.snapshot_row ?? undefined,
    headAfter: Number(first?.head_after ?? 0),
    head: rows
      .filter((row) => row.stream_position !== null && row.stream_position !== undefined)
      .map((row) => toLogMessage(row as MessageRow)),
  };
}
