import { appDefaults } from '../defaults.js';
import { entities, eventTypes } from '../todos/todo-events.js';
import type { HistoryEvent } from './history-event-schema.js';

const { limits } = appDefaults;
const knownEventTypes = new Set<unknown>(eventTypes);
const knownEntities = new Set<unknown>(entities);

/** Returned by the field readers below when a value breaks the schema. */
const refused = Symbol('refused');

const storable = (value: string) => !value.includes('\u0000') && value.isWellFormed();

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function requiredText(value: unknown, max: number): string | typeof refused {
  return typeof value === 'string' && value.length >= 1 && value.length <= max && storable(value) ? value : refused;
}

/** Absent, null and "" all mean none. */
function optionalText(value: unknown, max: number): string | null | typeof refused {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.length > max || !storable(value)) return refused;
  return value === '' ? null : value;
}

function changesText(value: unknown): string | null | typeof refused {
  if (value === undefined || value === null) return null;
  return typeof value === 'string' && storable(value) ? value : refused;
}

/**
 * The same reading of the todo-history event format as `historyEventSchema`, written out by hand
 * for the ingest's hot path: the same checks and the same output. Undefined when anything is
 * wrong; the schema then says what (a property test holds the two together).
 */
export function readHistoryEvent(body: Record<string, unknown>): HistoryEvent | undefined {
  const { eventType, payload } = body;
  if (!knownEventTypes.has(eventType) || !isObject(payload) || !knownEntities.has(payload.entity)) return undefined;
  const entityId = requiredText(payload.entityId, limits.id);
  const groupId = optionalText(payload.groupId, limits.id);
  const groupName = optionalText(payload.groupName, limits.name);
  const taskId = optionalText(payload.taskId, limits.id);
  const taskName = optionalText(payload.taskName, limits.name);
  const changes = changesText(payload.changes);
  const user = optionalText(payload.user, limits.user);
  const workspace = optionalText(payload.workspace, limits.workspace);
  if (
    entityId === refused ||
    groupId === refused ||
    groupName === refused ||
    taskId === refused ||
    taskName === refused ||
    changes === refused ||
    user === refused ||
    workspace === refused
  ) {
    return undefined;
  }
  return {
    eventType: eventType as HistoryEvent['eventType'],
    timestamp: body.timestamp,
    payload: {
      entity: payload.entity as HistoryEvent['payload']['entity'],
      entityId,
      groupId,
      groupName,
      taskId,
      taskName,
      changes,
      user,
      workspace,
      timestamp: payload.timestamp,
    },
  };
}
