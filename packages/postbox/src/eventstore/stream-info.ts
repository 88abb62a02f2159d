import type { Executor } from '../sql/database.js';
import type { StreamState } from './event.js';
import { executorFor, type Target } from './executor.js';
import { categoryOf, checkStreamId } from './stream-id.js';
import { StreamStateError } from './stream-state-error.js';

export interface StreamInfo {
  streamId: string;
  category: string;
  /** The number of events: the position of the last one. */
  version: number;
  state: StreamState;
  metadata: Record<string, unknown>;
  createdAt: Date | null;
  updatedAt: Date | null;
}

export interface StreamRow {
  category: string;
  version: string | number;
  state: Exclude<StreamState, 'no_stream'>;
  metadata: Record<string, unknown>;
  created_at: Date | string;
  updated_at: Date | string;
}

/** A stream's version, state and metadata; `no_stream` (version 0) for one never written. */
export async function getStreamInfo(target: Target, streamId: string): Promise<StreamInfo> {
  checkStreamId(streamId);
  return readInfo(executorFor(target), streamId);
}

export async function readInfo(db: Executor, streamId: string): Promise<StreamInfo> {
  const { rows } = await db.query<StreamRow>(
    'select category, version, state, metadata, created_at, updated_at from postbox.streams where stream_id = $1',
    [streamId],
  );
  return toInfo(streamId, rows[0]);
}

export function toInfo(streamId: string, row: StreamRow | undefined): StreamInfo {
  if (!row) {
    return { streamId, category: categoryOf(streamId), version: 0, state: 'no_stream', metadata: {}, createdAt: null, updatedAt: null };
  }
  return {
    streamId,
    category: row.category,
    version: Number(row.version),
    state: row.state,
    metadata: row.metadata,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/** True when the stream has events and is not tombstoned. */
export async function streamExists(target: Target, streamId: string): Promise<boolean> {
  const info = await getStreamInfo(target, streamId);
  return info.version > 0 && info.state !== 'tombstoned';
}

export async function getStreamMetadata(target: Target, streamId: string): Promise<Record<string, unknown>> {
  return (await getStreamInfo(target, streamId)).metadata;
}

/**
 * Sets a stream's metadata (a JSON object): replaced whole, or merged into what is there with
 * `{ merge: true }`. A stream without events gets a row at version 0. Refused on a tombstoned stream.
 */
export async function setStreamMetadata(
  target: Target,
  streamId: string,
  metadata: Record<string, unknown>,
  options: { merge?: boolean } = {},
): Promise<Record<string, unknown>> {
  checkStreamId(streamId);
  const { rows } = await executorFor(target).query<{ metadata: Record<string, unknown> }>(
    `insert into postbox.streams as s (stream_id, category, metadata) values ($1, $2, $3::jsonb)
     on conflict (stream_id) do update
       set metadata = case when $4 then s.metadata || excluded.metadata else excluded.metadata end, updated_at = now()
       where s.state <> 'tombstoned'
     returning metadata`,
    [streamId, categoryOf(streamId), JSON.stringify(metadata ?? {}), options.merge === true],
  );
  if (!rows[0]) throw new StreamStateError('POSTBOX_ERR_STREAM_DELETED', streamId);
  return rows[0].metadata;
}

/**
 * Tombstones a stream: it takes no more events, its id can never be used again, and reads report
 * `tombstoned`. Its events stay in the log (audits, projections that already saw them).
 */
export async function tombstoneStream(target: Target, streamId: string): Promise<void> {
  checkStreamId(streamId);
  await executorFor(target).query(
    `insert into postbox.streams as s (stream_id, category, state, tombstoned_at) values ($1, $2, 'tombstoned', now())
     on conflict (stream_id) do update set state = 'tombstoned', tombstoned_at = coalesce(s.tombstoned_at, now()), updated_at = now()`,
    [streamId, categoryOf(streamId)],
  );
}

/** Archives a stream: it refuses appends until restored, reads still work, and bulk snapshot jobs skip it. */
export async function archiveStream(target: Target, streamId: string): Promise<void> {
  await changeState(target, streamId, 'archived');
}

/** Makes an archived stream take appends again. */
export async function restoreStream(target: Target, streamId: string): Promise<void> {
  await changeState(target, streamId, 'active');
}

async function changeState(target: Target, streamId: string, state: 'active' | 'archived'): Promise<void> {
  checkStreamId(streamId);
  const { rows } = await executorFor(target).query<{ state: string }>(
    `with target as (select stream_id, state from postbox.streams where stream_id = $1 for update),
     changed as (
       update postbox.streams s
       set state = $2, archived_at = case when $2 = 'archived' then now() else null end, updated_at = now()
       from target t where s.stream_id = t.stream_id and t.state <> 'tombstoned'
       returning s.state
     )
     select coalesce((select state from changed), (select state from target)) as state`,
    [streamId, state],
  );
  const result = rows[0]?.state;
  if (result === null || result === undefined) throw new StreamStateError('POSTBOX_ERR_STREAM_NOT_FOUND', streamId);
  if (result === 'tombstoned') throw new StreamStateError('POSTBOX_ERR_STREAM_DELETED', streamId);
}
