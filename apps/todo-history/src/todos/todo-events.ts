import type { OutgoingMessage } from 'postbox';

export const eventTypes = ['created', 'updated', 'deleted', 'status_changed', 'commented'] as const;
export type EventType = (typeof eventTypes)[number];
export const entities = ['Group', 'Task'] as const;
export type Entity = (typeof entities)[number];

/** The todo-history event format, exactly: what the todo API publishes and the history consumer reads. */
export interface TodoEvent {
  eventType: EventType;
  timestamp: string;
  payload: {
    entity: Entity;
    entityId: string;
    groupId: string;
    groupName: string;
    taskId: string | null;
    taskName: string | null;
    changes: string;
    user: string;
    workspace: string;
    timestamp: string;
  };
}

export interface GroupRef {
  groupId: string;
  name: string;
  workspace: string;
}

export interface TaskRef {
  taskId: string;
  name: string;
}

export interface Change {
  eventType: EventType;
  group: GroupRef;
  /** Present for Task events; a Group event has none. */
  task?: TaskRef;
  changes: string;
  user: string;
  at: Date;
}

/** The event of one change: a Group's entityId is its groupId, a Task's entityId is its taskId. */
export function todoEvent(change: Change): TodoEvent {
  const timestamp = change.at.toISOString();
  const { group, task } = change;
  return {
    eventType: change.eventType,
    timestamp,
    payload: {
      entity: task ? 'Task' : 'Group',
      entityId: task ? task.taskId : group.groupId,
      groupId: group.groupId,
      groupName: group.name,
      taskId: task?.taskId ?? null,
      taskName: task?.name ?? null,
      changes: change.changes,
      user: change.user,
      workspace: group.workspace,
      timestamp,
    },
  };
}

/** The outbox message of a change: keyed by its group, so one group's history keeps its order. */
export function todoMessage(topic: string, change: Change): OutgoingMessage {
  const event = todoEvent(change);
  return {
    topic,
    type: `todo.${event.payload.entity.toLowerCase()}.${event.eventType}`,
    key: change.group.groupId,
    payload: event,
    userId: change.user,
  };
}

/** The human-readable `changes` texts of the todo-history event format. */
export const describe = {
  created: (entity: Entity, name: string) => `${entity} '${name}' was created`,
  deleted: (entity: Entity, name: string) => `${entity} '${name}' was deleted`,
  renamed: (entity: Entity, from: string, to: string) => `${entity} renamed from ${from} to ${to}`,
  descriptionChanged: () => 'Description updated',
  status: (from: string, to: string) => `Status changed from ${from} to ${to}`,
  comment: (text: string) => `Comment added: ${text}`,
};
