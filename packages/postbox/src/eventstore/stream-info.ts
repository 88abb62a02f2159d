import { readStreamRow, type StreamRow, writeArchived, writeStreamMetadata, writeTombstone } from '../log/streams.js';
import type { Executor } from '../sql/database.js';
import { executorFor, type Target } from '../sql/target.js';
import type { StreamState } from './event.js';
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

/** A stream's version, state and metadata; `no_stream` (version 0) for one never written. */
export async function getStreamInfo(target: Target, streamId: string): Promise<StreamInfo> {
  checkStreamId(streamId);
  return readInfo(executorFor(target), streamId);
}

export async function readInfo(db: Executor, streamId: string): Promise<StreamInfo> {
  return toInfo(streamId, await readStreamRow(db, streamId));
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
  const stored = await writeStreamMetadata(
    executorFor(target),
    { streamId, category: categoryOf(streamId) },
    metadata ?? {},
    options.merge === true,
  );
  if (!stored) throw new StreamStateError('POSTBOX_ERR_STREAM_DELETED', streamId);
  return stored;
}

/**
 * Tombstones a stream: it takes no more events, its id can never be used again, and reads report
 * `tombstoned`. Its events stay in the log (audits, projections that already saw them).
 */
export async function tombstoneStream(target: Target, streamId: string): Promise<void> {
  checkStreamId(streamId);
  await writeTombstone(executorFor(target), { streamId, category: categoryOf(streamId) });
}

/** Archives a stream: it refuses appends until restored, reads still work, and bulk snapshot jobs skip it. */
export async function archiveStream(target: Target, streamId: string): Promise<void> {
  await changeState(target, streamId, true);
}

/** Makes an archived stream take appends again. */
export async function restoreStream(target: Target, streamId: string): Promise<void> {
  await changeState(target, streamId, false);
}

async function changeState(target: Target, streamId: string, archived: boolean): Promise<void> {
  checkStreamId(streamId);
  const result = await writeArchived(executorFor(target), streamId, archived);
  if (result === undefined) throw new StreamStateError('POSTBOX_ERR_STREAM_NOT_FOUND', streamId);
  if (result === 'tombstoned') throw new StreamStateError('POSTBOX_ERR_STREAM_DELETED', streamId);
}
