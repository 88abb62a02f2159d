import { defaults } from '../config/defaults.js';
import { ValidationError } from '../errors/postbox-error.js';
import type { AsOf } from '../log/read.js';
import { readStreamStart } from '../log/stream-start.js';
import type { Logger } from '../observability/logger.js';
import type { Executor } from '../sql/database.js';
import { executorFor, type Target } from '../sql/target.js';
import { type Evolver, type SnapshotOptions, shouldSnapshot, snapshotSchemaVersion } from './aggregate.js';
import type { EventLike, RecordedEvent, StreamState } from './event.js';
import { readRange } from './read-stream.js';
import { recordedEventOf } from './recorded-event.js';
import { type LoadedSnapshot, saveSnapshot, toSnapshot } from './snapshot-store.js';
import { checkStreamId } from './stream-id.js';
import { readInfo, type StreamInfo, toInfo } from './stream-info.js';
import { StreamStateError } from './stream-state-error.js';
import type { Upcasters } from './upcasters.js';

/** A point in the past: the state after the longest run of the stream's first events that are all at or before it. */
export type { AsOf } from '../log/read.js';

export interface AggregateStreamOptions<State, E extends EventLike = EventLike> extends Evolver<State, E> {
  /** The snapshot name; snapshots are used only with a name. */
  name?: string;
  snapshots?: SnapshotOptions<State> | false;
  upcasters?: Upcasters;
  /** Point-in-time state for audits; snapshots are not used then. */
  asOf?: AsOf;
  /**
   * Writes a snapshot when the policy asks, or to replace a stale or unreadable one. False by default:
   * a load only reads; the command handler and the bulk job (createSnapshots) write snapshots.
   */
  saveSnapshots?: boolean;
  logger?: Logger;
}

/** How the snapshot was used: `stale` (older schema version) and `unreadable` ones fell back to a full replay. */
export type SnapshotUse = 'none' | 'used' | 'stale' | 'unreadable';

export interface AggregateResult<State> {
  streamId: string;
  state: State;
  /** The position of the last event folded in: the expected version for a decision on this state. */
  version: number;
  streamState: StreamState;
  snapshot: SnapshotUse;
  /** The version of the snapshot the replay started from (0 for a full replay). */
  snapshotVersion: number;
  /** Events folded in after the snapshot. */
  replayed: number;
  /** The last event folded in. */
  lastEvent: { globalPosition: bigint; createdAt: Date } | undefined;
}

const endOfStream = Number.MAX_SAFE_INTEGER;

function checkAsOf(asOf: AsOf | undefined): AsOf | undefined {
  if (!asOf) return undefined;
  if ('timestamp' in asOf) {
    if (!(asOf.timestamp instanceof Date) || Number.isNaN(asOf.timestamp.getTime())) {
      throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'asOf.timestamp must be a valid Date.', { option: 'asOf' });
    }
    return asOf;
  }
  if (typeof asOf.globalPosition !== 'bigint') {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'asOf.globalPosition must be a bigint.', { option: 'asOf' });
  }
  return asOf;
}

/**
 * Folds a stream into state. With a name and snapshots it starts from the latest snapshot and replays
 * only later events; a snapshot of an older schema version, or one that is damaged or cannot be read
 * back, is ignored for a full replay and then replaced. A tombstoned stream is refused unless asOf is given.
 */
export async function aggregateStream<State, E extends EventLike = EventLike>(
  target: Target,
  streamId: string,
  options: AggregateStreamOptions<State, E>,
): Promise<AggregateResult<State>> {
  checkStreamId(streamId);
  return aggregateOn(executorFor(target), streamId, options);
}

export async function aggregateOn<State, E extends EventLike>(
  db: Executor,
  streamId: string,
  options: AggregateStreamOptions<State, E>,
): Promise<AggregateResult<State>> {
  const asOf = checkAsOf(options.asOf);
  const snapshots = options.name && options.snapshots !== false && !options.asOf ? (options.snapshots ?? {}) : undefined;
  const schemaVersion = snapshotSchemaVersion(snapshots as SnapshotOptions<unknown> | undefined);
  const start = await loadStart(db, streamId, snapshots ? (options.name as string) : undefined, schemaVersion, options.asOf !== undefined);
  const { info, snapshot: loaded } = start;
  if (info.state === 'tombstoned' && !options.asOf) throw new StreamStateError('POSTBOX_ERR_STREAM_DELETED', streamId);
  let state = options.initialState();
  let version = 0;
  let snapshot: SnapshotUse = 'none';
  if (snapshots && info.version > 0) {
    if (loaded) {
      if (!loaded.intact || loaded.version > info.version) snapshot = 'unreadable';
      else if (loaded.schemaVersion !== schemaVersion) snapshot = 'stale';
      else {
        try {
          state = snapshots.fromSnapshot ? snapshots.fromSnapshot(loaded.state) : (loaded.state as State);
          version = loaded.version;
          snapshot = 'used';
        } catch (error) {
          options.logger?.warn({ err: error, streamId, snapshot: options.name }, 'snapshot could not be read back; replaying the stream');
          state = options.initialState();
          snapshot = 'unreadable';
        }
      }
    }
  }
  const snapshotVersion = version;
  let lastEvent: RecordedEvent | undefined;
  const fold = (events: RecordedEvent[]) => {
    for (const raw of events) {
      const event = options.upcasters ? options.upcasters.upcast(raw) : raw;
      state = options.evolve(state, event as unknown as E);
      lastEvent = event;
    }
    if (lastEvent) version = lastEvent.streamPosition;
  };
  let replayed = 0;
  const head = start.head && start.headAfter === version ? start.head : undefined;
  if (head) {
    fold(head);
    replayed = head.length;
  }
  if (!head || head.length >= defaults.eventStore.readBatchSize) {
    replayed += await readRange(db, streamId, false, version + 1, endOfStream, endOfStream, fold, asOf);
  }
  const result: AggregateResult<State> = {
    streamId,
    state,
    version,
    streamState: info.state,
    snapshot,
    snapshotVersion,
    replayed,
    lastEvent: lastEvent && { globalPosition: lastEvent.globalPosition, createdAt: lastEvent.createdAt },
  };
  if (snapshots && options.saveSnapshots === true && lastEvent) {
    const replace = snapshot === 'stale' || snapshot === 'unreadable';
    if (replace || shouldSnapshot(snapshots.policy, { streamId, version, eventsSinceSnapshot: version - snapshotVersion, state })) {
      await storeSnapshot(db, options.name as string, snapshots, result, replace).catch((error) =>
        options.logger?.warn({ err: error, streamId, snapshot: options.name }, 'snapshot could not be saved'),
      );
    }
  }
  return result;
}

interface Start {
  info: StreamInfo;
  snapshot?: LoadedSnapshot;
  /** The first page of events after `headAfter`: the snapshot's version when the database found it usable, else 0. */
  head?: RecordedEvent[];
  headAfter: number;
}

/**
 * The stream's row, its snapshot for this aggregate, and the first page of events after the snapshot,
 * in one query. With asOf, only the row (the events are read with the asOf bound).
 */
async function loadStart(db: Executor, streamId: string, name: string | undefined, schemaVersion: number, asOf: boolean): Promise<Start> {
  if (asOf) return { info: await readInfo(db, streamId), headAfter: 0 };
  const start = await readStreamStart(
    db,
    streamId,
    name === undefined ? undefined : { name, schemaVersion },
    defaults.eventStore.readBatchSize,
  );
  return {
    info: toInfo(streamId, start.stream),
    snapshot: start.snapshot && name !== undefined ? toSnapshot(streamId, name, start.snapshot) : undefined,
    head: start.head.map(recordedEventOf),
    headAfter: start.headAfter,
  };
}

/** Saves the state of a result as the stream's snapshot for this aggregate. */
export async function storeSnapshot<State>(
  db: Executor,
  name: string,
  options: SnapshotOptions<State>,
  result: AggregateResult<State>,
  replace = false,
): Promise<boolean> {
  if (!result.lastEvent || result.version === 0) return false;
  return saveSnapshot(
    db,
    {
      streamId: result.streamId,
      name,
      version: result.version,
      schemaVersion: snapshotSchemaVersion(options as SnapshotOptions<unknown>),
      state: options.toSnapshot ? options.toSnapshot(result.state) : result.state,
      globalPosition: result.lastEvent.globalPosition,
      eventCreatedAt: result.lastEvent.createdAt,
    },
    replace,
  );
}
