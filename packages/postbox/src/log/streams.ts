import type { Executor } from '../sql/database.js';

/** A row of postbox.streams: a stream's category, version, state and metadata. */
export interface StreamRow {
  category: string;
  version: string | number;
  state: 'active' | 'archived' | 'tombstoned';
  metadata: Record<string, unknown>;
  created_at: Date | string;
  updated_at: Date | string;
}

export const streamColumns = 'category, version, state, metadata, created_at, updated_at';

/** The stream's row; undefined for a stream never written. */
export async function readStreamRow(db: Executor, streamId: string): Promise<StreamRow | undefined> {
  const { rows } = await db.query<StreamRow>(`select ${streamColumns} from postbox.streams where stream_id = $1`, [streamId]);
  return rows[0];
}

/**
 * Replaces a stream's metadata, or merges into it; a stream without events gets a row at version 0.
 * Undefined when the stream is tombstoned, which keeps its metadata.
 */
export async function writeStreamMetadata(
  db: Executor,
  stream: { streamId: string; category: string },
  metadata: Record<string, unknown>,
  merge: boolean,
): Promise<Record<string, unknown> | undefined> {
  const { rows } = await db.query<{ metadata: Record<string, unknown> }>(
    `insert into postbox.streams as s (stream_id, category, metadata) values ($1, $2, $3::jsonb)
     on conflict (stream_id) do update
       set metadata = case when $4 then s.metadata || excluded.metadata else excluded.metadata end, updated_at = now()
       where s.state <> 'tombstoned'
     returning metadata`,
    [stream.streamId, stream.category, JSON.stringify(metadata), merge],
  );
  return rows[0]?.metadata;
}

/** Marks a stream tombstoned, creating its row if it has none, so that its id can never be used again. */
export async function writeTombstone(db: Executor, stream: { streamId: string; category: string }): Promise<void> {
  await db.query(
    `insert into postbox.streams as s (stream_id, category, state, tombstoned_at) values ($1, $2, 'tombstoned', now())
     on conflict (stream_id) do update set state = 'tombstoned', tombstoned_at = coalesce(s.tombstoned_at, now()), updated_at = now()`,
    [stream.streamId, stream.category],
  );
}

/**
 * Archives a stream or makes it active again, unless it is tombstoned. Returns the state it ends in
 * (`tombstoned` when it was), or undefined when the stream has no row.
 */
export async function writeArchived(db: Executor, streamId: string, archived: boolean): Promise<StreamRow['state'] | undefined> {
  const { rows } = await db.query<{ state: StreamRow['state'] | null }>(
    `with target as (select stream_id, state from postbox.streams where stream_id = $1 for update),
     changed as (
       update postbox.streams s
       set state = $2, archived_at = case when $2 = 'archived' then now() else null end, updated_at = now()
       from target t where s.stream_id = t.stream_id and t.state <> 'tombstoned'
       returning s.state
     )
     select coalesce((select state from changed), (select state from target)) as state`,
    [streamId, archived ? 'archived' : 'active'],
  );
  return rows[0]?.state ?? undefined;
}

export interface SnapshotCandidates {
  category: string;
  /** The aggregate whose snapshots are looked at. */
  name: string;
  /** Streams whose snapshot is at least this many events behind, or missing. */
  every: number;
  schemaVersion: number;
  /** Streams after this id, in id order. */
  after: string;
  limit: number;
}

/**
 * Active streams of a category whose snapshot for an aggregate is missing, behind by `every` events
 * or more, of another schema version, ahead of the stream, or damaged.
 */
export async function streamsNeedingSnapshots(db: Executor, query: SnapshotCandidates): Promise<string[]> {
  const { rows } = await db.query<{ stream_id: string }>(
    `select s.stream_id from postbox.streams s
     left join postbox.snapshots p on p.stream_id = s.stream_id and p.name = $2
     where s.category = $1 and s.state = 'active' and s.version > 0 and s.stream_id > $3
       and (s.version - coalesce(p.version, 0) >= $4 or p.version > s.version or p.schema_version <> $5 or p.checksum <> md5(p.state::text))
     order by s.stream_id
     limit $6`,
    [query.category, query.name, query.after, query.every, query.schemaVersion, query.limit],
  );
  return rows.map((row) => row.stream_id);
}
