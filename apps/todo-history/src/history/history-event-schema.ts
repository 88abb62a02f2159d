import { z } from 'zod';
import { appDefaults } from '../defaults.js';
import { entities, eventTypes } from '../todos/todo-events.js';

const { limits } = appDefaults;

const storable = (value: string) => !value.includes('\u0000') && value.isWellFormed();

const requiredText = (max: number) =>
  z
    .string()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .refine(storable, 'must not hold NUL or unpaired surrogate characters');

/** An optional field of the todo-history event format: absent, null and "" all mean none. */
const optionalText = (max: number) =>
  z
    .string()
    .max(max, `must be at most ${max} characters`)
    .refine(storable, 'must not hold NUL or unpaired surrogate characters')
    .nullish()
    .transform((value) => (value ? value : null));

/**
 * The todo-history event format, as the history consumer reads it. Unknown fields are allowed and
 * kept in event_data; timestamps are checked apart. A hand-written reader with the same checks
 * serves the ingest's hot path (history-event-reader.ts); this schema says what is wrong.
 */
export const historyEventSchema = z.object({
  eventType: z.enum(eventTypes),
  timestamp: z.unknown().optional(),
  payload: z.object({
    entity: z.enum(entities),
    entityId: requiredText(limits.id),
    groupId: optionalText(limits.id),
    groupName: optionalText(limits.name),
    taskId: optionalText(limits.id),
    taskName: optionalText(limits.name),
    changes: z
      .string()
      .refine(storable, 'must not hold NUL or unpaired surrogate characters')
      .nullish()
      .transform((value) => value ?? null),
    user: optionalText(limits.user),
    workspace: optionalText(limits.workspace),
    timestamp: z.unknown().optional(),
  }),
});

/** A history event as decoded: optional texts are a string or null, never "". */
export type HistoryEvent = z.output<typeof historyEventSchema>;
