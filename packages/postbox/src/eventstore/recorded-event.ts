import type { LogMessage, MessageHeaders } from '../log/message.js';
import type { RecordedEvent } from './event.js';

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
