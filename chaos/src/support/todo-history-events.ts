import { randomUUID } from 'node:crypto';
import type { OutgoingMessage } from 'postbox';
import { type Change, type EventType, todoMessage } from '../../../apps/todo-history/src/todos/todo-events.js';

const groups = Array.from({ length: 20 }, (_, index) => ({ groupId: randomUUID(), name: `Chaos group ${index}`, workspace: 'chaos' }));
const eventTypes: readonly EventType[] = ['created', 'updated', 'status_changed', 'commented'];

/** Todo event number `sequence` in the todo-history event format, as the todo API would publish it: a task event in one of 20 groups. */
export function todoHistoryMessage(topic: string, sequence: number): OutgoingMessage {
  const group = groups[sequence % groups.length] as (typeof groups)[number];
  const change: Change = {
    eventType: eventTypes[sequence % eventTypes.length] as EventType,
    group,
    task: { taskId: randomUUID(), name: `Task ${sequence}` },
    changes: `change ${sequence}`,
    user: `user-${sequence % 7}`,
    at: new Date(),
  };
  return todoMessage(topic, change);
}
