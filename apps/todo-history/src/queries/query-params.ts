import { z } from 'zod';
import { appDefaults } from '../defaults.js';
import { badRequest } from '../errors.js';
import { readTimestamp } from '../history/history-event.js';
import { parseRequest, storableText } from '../http/validation.js';
import { type EventType, eventTypes } from '../todos/todo-events.js';

const { defaultLimit, maxLimit } = appDefaults.query;

const time = z
  .string()
  .transform((value, context) => {
    const exact = /^\d{4}-\d{2}-\d{2}$/.test(value) ? readTimestamp(`${value}T00:00:00Z`) : readTimestamp(value);
    if (exact === undefined) {
      context.addIssue({
        code: 'custom',
        message: `must be an RFC 3339 time such as 2025-11-10T15:30:45Z, or a date such as 2025-11-10 (got ${JSON.stringify(value.slice(0, 40))})`,
      });
      return z.NEVER;
    }
    return exact;
  })
  .optional();

const listQuery = z.object({
  limit: z
    .string()
    .refine(
      (value) => /^\d{1,7}$/.test(value) && Number(value) >= 1 && Number(value) <= maxLimit,
      `must be an integer from 1 to ${maxLimit}`,
    )
    .transform(Number)
    .optional(),
  cursor: z.string().optional(),
  from: time,
  to: time,
  eventType: z.enum(eventTypes).optional(),
  user: storableText(appDefaults.limits.user, { trim: false }).optional(),
});

export interface ListFilter {
  limit: number;
  cursor: string | undefined;
  /** Inclusive lower bound, canonical UTC. */
  from: string | undefined;
  /** Exclusive upper bound, canonical UTC. */
  to: string | undefined;
  eventType: EventType | undefined;
  user: string | undefined;
}

/** The parameters every history read shares: limit, cursor, from/to, eventType and user. */
export function parseListQuery(query: unknown): ListFilter {
  const parsed = parseRequest(listQuery, query, 'query');
  if (parsed.from && parsed.to && parsed.from >= parsed.to) {
    throw badRequest('parameter from must be earlier than parameter to', { field: 'from' });
  }
  return {
    limit: parsed.limit ?? defaultLimit,
    cursor: parsed.cursor,
    from: parsed.from,
    to: parsed.to,
    eventType: parsed.eventType,
    user: parsed.user,
  };
}

// Compared as given: a NUL would make PostgreSQL refuse the query rather than find nothing.
const entityId = storableText(appDefaults.limits.id, { trim: false });

/** A groupId or taskId from the path or the query string. */
export function parseEntityId(value: unknown, name: 'groupId' | 'taskId', part: 'path' | 'query'): string {
  return parseRequest(z.object({ [name]: entityId }), { [name]: value }, part)[name] as string;
}
