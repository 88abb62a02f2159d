import type { RoutedMessage } from 'postbox';
import { type DecodedEvent, readTimestamp } from './history-event.js';

/** One todo_event_logs row, as the batched insert takes it. */
export interface HistoryRow {
  message_id: string;
  timestamp: string;
  timestamp_fallback: boolean;
  event_type: string;
  entity: string;
  entity_id: string;
  group_id: string | null;
  group_name: string | null;
  task_id: string | null;
  task_name: string | null;
  changes: string | null;
  user_name: string | null;
  workspace: string | null;
  /** The event as it arrived, as JSON text. */
  event_data: string;
  source_topic: string;
  source_partition: number | null;
  source_offset: string;
}

/**
 * One event as one row of todo_event_logs: a Group's entityId is its groupId and a Task's entityId
 * is its taskId; names are kept as the event carried them. An unreadable timestamp becomes the
 * time the message entered the log (the same on every redelivery) and the row is flagged.
 */
export function toHistoryRow(message: RoutedMessage<DecodedEvent>): HistoryRow {
  const { event, json } = message.payload;
  const { payload } = event;
  const readable = readTimestamp(event.timestamp) ?? readTimestamp(payload.timestamp);
  return {
    message_id: message.id,
    timestamp: readable ?? message.createdAt.toISOString(),
    timestamp_fallback: readable === undefined,
    event_type: event.eventType,
    entity: payload.entity,
    entity_id: payload.entityId,
    group_id: payload.entity === 'Group' ? payload.entityId : payload.groupId,
    group_name: payload.groupName,
    task_id: payload.entity === 'Task' ? payload.entityId : payload.taskId,
    task_name: payload.taskName,
    changes: payload.changes,
    user_name: payload.user,
    workspace: payload.workspace,
    event_data: json,
    source_topic: message.topic,
    source_partition: message.source.kind === 'kafka' ? message.source.partition : null,
    source_offset: message.source.kind === 'kafka' ? message.source.offset : message.source.globalPosition.toString(),
  };
}
