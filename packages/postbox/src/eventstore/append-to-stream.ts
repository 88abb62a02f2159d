import { defaults } from '../config/defaults.js';
import { type AppendRow, appendStreamEvents, type StreamAppended } from '../log/append.js';
import type { MessageHeaders } from '../log/message.js';
import type { LogPosition } from '../log/position.js';
import { readStreamRow } from '../log/streams.js';
import { inSpan, traceHeaders } from '../observability/tracing.js';
import type { OutgoingMessage } from '../outbox/outgoing-message.js';
import { producerAttributes } from '../outbox/producer-span.js';
import { prepareMessage } from '../outbox/validate.js';
import { type InlineProjection, runInlineProjections } from '../projections/inline-projection.js';
import type { Executor } from '../sql/database.js';
import { executorFor, isDatabase, type Target } from '../sql/target.js';
import { currentVersion, mapAppendError } from './append-error.js';
import { ConcurrencyError } from './concurrency-error.js';
import type { EventData, ExpectedVersion, RecordedEvent } from './event.js';
import type { EventStoreMetrics } from './event-store-metrics.js';
import { categoryOf, checkStreamId, encodeExpectedVersion, versionMatches } from './stream-id.js';
import { StreamStateError } from './stream-state-error.js';
import type { Upcasters } from './upcasters.js';

export interface AppendOptions {
  /** The version the stream must be at; `any` (no check) by default. */
  expectedVersion?: ExpectedVersion;
  /** Run in the append's transaction; with a Database target the append then opens one. */
  inlineProjections?: readonly InlineProjection<any>[];
  /** Supplies the schema version of events that do not give one (the latest their chain reaches). */
  upcasters?: Upcasters;
  payloadLimitBytes?: number;
  metrics?: EventStoreMetrics;
}

export interface AppendResult {
  streamId: string;
  category: string;
  /** The stream's version before the append. */
  previousVersion: number;
  /** The stream's version after it: pass it as the next append's expectedVersion. */
  nextExpectedVersion: number;
  eventIds: string[];
  globalPositions: bigint[];
  /** The log position of the last event (the append's start when nothing was appended). */
  position: LogPosition;
  createdAt: Date;
}

function toOutgoing(event: EventData, streamId: string, category: string, upcasters: Upcasters | undefined): OutgoingMessage {
  const headers = event.metadata || event.headers ? { ...event.metadata, ...event.headers } : undefined;
  return {
    topic: category,
    type: event.type,
    payload: event.data,
    key: streamId,
    id: event.id,
    traceId: event.traceId,
    correlationId: event.correlationId,
    causationId: event.causationId,
    userId: event.userId,
    schemaVersion: event.schemaVersion ?? upcasters?.latestVersion(event.type),
    headers,
  };
}

/** The events as stored, for inline projections and for folding into a decided state. */
export function recordedEvents(rows: readonly AppendRow[], result: AppendResult, data: readonly unknown[]): RecordedEvent[] {
  return rows.map((row, index) => {
    const headers = JSON.parse(row.headersJson) as MessageHeaders;
    return {
      type: row.type,
      data: data[index],
      id: row.id,
      streamId: result.streamId,
      streamPosition: result.previousVersion + index + 1,
      category: result.category,
      globalPosition: result.globalPositions[index] as bigint,
      transactionId: result.position.transactionId,
      schemaVersion: headers.schemaVersion,
      headers,
      createdAt: result.createdAt,
    };
  });
}

/** The internal form: the rows as written, for callers that fold the new events. */
export interface AppendOutcome {
  result: AppendResult;
  rows: AppendRow[];
  events: readonly EventData[];
}

/**
 * Appends events to a stream. The expected version is checked, and the stream advanced, by the same
 * statement that writes the events to the log, so the append is atomic with or without a transaction.
 * `target` is a Postbox Database (the append commits on its own) or the caller's open transaction
 * (it commits with the caller's other writes: outbox messages, business rows, other streams).
 */
export async function appendToStream(
  target: Target,
  streamId: string,
  events: EventData | readonly EventData[],
  options: AppendOptions = {},
): Promise<AppendResult> {
  return (await appendEvents(target, streamId, events, options)).result;
}

export async function appendEvents(
  target: Target,
  streamId: string,
  events: EventData | readonly EventData[],
  options: AppendOptions = {},
): Promise<AppendOutcome> {
  checkStreamId(streamId);
  const category = categoryOf(streamId);
  const list: readonly EventData[] = Array.isArray(events) ? events : [events as EventData];
  const attributes = { ...producerAttributes(list.map(() => ({ topic: category }))), 'messaging.operation.name': 'append' };
  return inSpan(`send ${category}`, { kind: 'producer', attributes }, () => appendInSpan(target, streamId, category, list, options));
}

async function appendInSpan(
  target: Target,
  streamId: string,
  category: string,
  list: readonly EventData[],
  options: AppendOptions,
): Promise<AppendOutcome> {
  const expected = options.expectedVersion ?? 'any';
  const encoded = encodeExpectedVersion(expected);
  const limits = { payloadLimitBytes: options.payloadLimitBytes ?? defaults.payloadLimitBytes };
  // Each event carries the producer span's context, for the spans that will handle it.
  const trace = traceHeaders();
  const rows: AppendRow[] = list.map((event) => prepareMessage(toOutgoing(event, streamId, category, options.upcasters), limits, trace));
  if (rows.length === 0) return { result: await checkOnly(target, streamId, category, expected), rows, events: list };
  const started = performance.now();
  const inline = options.inlineProjections ?? [];
  const write = async (executor: Executor): Promise<AppendOutcome> => {
    let appended: StreamAppended;
    try {
      appended = await appendStreamEvents(executor, { streamId, category, expected: encoded }, rows);
    } catch (error) {
      throw await mapAppendError(error, streamId, expected, () =>
        isDatabase(target) ? currentVersion(target, streamId) : Promise.reject(error),
      );
    }
    const result = toResult(streamId, category, rows, appended);
    if (inline.length > 0) {
      await runInlineProjections(
        inline,
        recordedEvents(
          rows,
          result,
          list.map((event) => event.data),
        ),
        executor,
      );
    }
    return { result, rows, events: list };
  };
  const outcome = inline.length > 0 && isDatabase(target) ? await target.transaction(write) : await write(executorFor(target));
  options.metrics?.eventsAppended.inc(rows.length);
  options.metrics?.appendDuration.observe((performance.now() - started) / 1000);
  return outcome;
}

function toResult(streamId: string, category: string, rows: readonly AppendRow[], appended: StreamAppended): AppendResult {
  const last = appended.globalPositions.at(-1) ?? 0n;
  return {
    streamId,
    category,
    previousVersion: appended.previousVersion,
    nextExpectedVersion: appended.previousVersion + rows.length,
    eventIds: rows.map((row) => row.id),
    globalPositions: appended.globalPositions,
    position: { transactionId: appended.transactionId, globalPosition: last },
    createdAt: appended.createdAt,
  };
}

/** An append of no events writes nothing, but still checks the expected version and the stream's state. */
async function checkOnly(target: Target, streamId: string, category: string, expected: ExpectedVersion): Promise<AppendResult> {
  const row = await readStreamRow(executorFor(target), streamId);
  const version = row ? Number(row.version) : 0;
  if (row?.state === 'tombstoned') throw new StreamStateError('POSTBOX_ERR_STREAM_DELETED', streamId);
  if (!versionMatches(expected, version)) throw new ConcurrencyError(streamId, expected, version);
  return {
    streamId,
    category,
    previousVersion: version,
    nextExpectedVersion: version,
    eventIds: [],
    globalPositions: [],
    position: { transactionId: 0n, globalPosition: 0n },
    createdAt: new Date(),
  };
}
