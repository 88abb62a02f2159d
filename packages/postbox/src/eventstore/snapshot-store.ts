import type { SnapshotRow } from '../log/stream-start.js';
import type { Executor } from '../sql/database.js';

export interface Snapshot {
  streamId: string;
  /** The aggregate the state belongs to: one stream can have snapshots of several. */
  name: string;
  /** The stream version the state includes. */
  version: number;
  schemaVersion: number;
  state: unknown;
  /** The last event the state includes. */
  globalPosition: bigint;
  eventCreatedAt: Date;
}

export interface LoadedSnapshot extends Snapshot {
  /** False when the stored state no longer matches the checksum written with it. */
  intact: boolean;
  createdAt: Date;
}

export async function loadSnapshot(db: Executor, streamId: string, name: string): Promise<LoadedSnapshot | undefined> {
  const { rows } = await db.query<SnapshotRow>(
    `select version, schema_version, state, md5(state::text) = checksum as intact, global_position, event_created_at, created_at
     from postbox.snapshots where stream_id = $1 and name = $2`,
    [streamId, name],
  );
  return rows[0] ? toSnapshot(streamId, name, rows[0]) : undefined;
}

export function toSnapshot(streamId: string, name: string, row: SnapshotRow): LoadedSnapshot {
  return {
    streamId,
    name,
    version: Number(row.version),
    schemaVersion: Number(row.schema_version),
    state: row.state,
    intact: row.intact,
    globalPosition: BigInt(row.global_position),
    eventCreatedAt: new Date(row.event_created_at),
    createdAt: new Date(row.created_at),
  };
}

/**
 * Stores a snapshot unless a newer one of the same schema version is there already; a stale
 * (other schema version) or damaged one is always replaced, and any one when `replace` is true.
 */
export async function saveSnapshot(db: Executor, snapshot: Snapshot, replace = false): Promise<boolean> {
  const { rowCount } = await db.query(
    `insert into postbox.snapshots as s (stream_id, name, version, schema_version, state, checksum, global_position, event_created_at)
     values ($1, $2, $3, $4, $5::jsonb, md5($5::jsonb::text), $6, $7)
     on conflict (stream_id, name) do update
       set version = excluded.version, schema_version = excluded.schema_version, state = excluded.state,
           checksum = excluded.checksum, global_position = excluded.global_position,
           event_created_at = excluded.event_created_at, created_at = now()
       where $8 or s.version <= excluded.version or s.schema_version <> excluded.schema_version or s.checksum <> md5(s.state::text)`,
    [
      snapshot.streamId,
      snapshot.name,
      snapshot.version,
      snapshot.schemaVersion,
      JSON.stringify(snapshot.state),
      String(snapshot.globalPosition),
      snapshot.eventCreatedAt,
      replace,
    ],
  );
  return rowCount > 0;
}

export async function deleteSnapshots(db: Executor, streamId: string, name?: string): Promise<number> {
  const { rowCount } = await db.query('delete from postbox.snapshots where stream_id = $1 and ($2::text is null or name = $2)', [
    streamId,
    name ?? null,
  ]);
  return rowCount;
}
