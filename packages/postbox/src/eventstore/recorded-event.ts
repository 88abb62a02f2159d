import type { LogMessage, MessageHeaders, MessageRow } from '../log/message.js';
import type { RecordedEvent } from './event.js';

/** The columns a stream read selects; created_at comes as epoch milliseconds, which is much cheaper to turn into a Date. */
export const eventColumns = `global_position, transaction_id::text as transaction_id, topic, message_id, type, key, payload, headers,
       stream_id, stream_position, (extract(epoch from created_at) * 1000)::float8 as created_at`;

/** The columns of a read within one stream, whose id and category the reader knows already. */
export const streamEventColumns = `global_position, transaction_id::text as transaction_id, message_id, type, payload, headers,
       stream_position, (extract(epoch from created_at) * 1000)::float8 as created_at`;

type EventRow = Pick<MessageRow, 'global_position' | 'transaction_id' | 'message_id' | 'type' | 'payload' | 'headers' | 'stream_position'> &
  Partial<Pick<MessageRow, 'topic' | 'stream_id'>> & { created_at: Date | string | number };

function schemaVersionOf(headers: MessageHeaders): number {
  return typeof headers.schemaVersion === 'number' ? headers.schemaVersion : 1;
}

/** A stream message a consumer read as a RecordedEvent (before upcasting); its streamId must be set. */
export function recordedEventOf(message: LogMessage): RecordedEvent {
  return {
    type: message.type,
    data: message.payload,
    id: message.id,
    streamId: message.streamId as string,
    streamPosition: Number(message.streamPosition),
    category: message.topic,
    globalPosition: message.globalPosition,
    transactionId: message.transactionId,
    schemaVersion: schemaVersionOf(message.headers),
    headers: message.headers,
    createdAt: message.createdAt,
  };
}

/** A stream row of the log as a RecordedEvent (before upcasting). */
export function toRecordedEvent(row: EventRow, stream?: { streamId: string; category: string }): RecordedEvent {
  const headers = row.headers as MessageHeaders;
  return {
    type: row.type,
    data: row.payload,
    id: row.message_id,
    streamId: stream ? stream.streamId : (row.stream_id as string),
    streamPosition: Number(row.stream_position),
    category: stream ? stream.category : (row.topic as string),
    globalPosition: BigInt(row.global_position),
    transactionId: BigInt(row.transaction_id),
    schemaVersion: schemaVersionOf(headers),
    headers,
    createdAt: row.created_at instanceof Date ? row.created_at : new Date(row.created_at),
  };
}
