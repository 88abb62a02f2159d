import { z } from 'zod';
import { badRequest } from '../errors.js';
import { readTimestamp } from '../history/history-event.js';

/** Where a page ended: the last item's exact time and its tiebreaker, plus the snapshot bound of summaries. */
export interface Cursor {
  kind: 'logs' | 'groups' | 'tasks';
  /** The last item's timestamp (or lastActivity), to the microsecond, UTC. */
  time: string;
  /** The last item's id (logs) or groupId / taskId (summaries). */
  key: string;
  /** Summaries count only rows up to this id, so rows added while paging do not move groups between pages. */
  maxId?: string;
}

const encoded = z.object({
  v: z.literal(1),
  k: z.enum(['logs', 'groups', 'tasks']),
  t: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/),
  i: z.string().min(1).max(200),
  m: z
    .string()
    .regex(/^\d{1,19}$/)
    .optional(),
});

const maxBigint = 2n ** 63n - 1n;

/** A bigint row id: digits, within PostgreSQL's bigint. */
function isRowId(text: string): boolean {
  return /^\d{1,19}$/.test(text) && BigInt(text) <= maxBigint;
}

const storable = (text: string) => !text.includes('\u0000') && text.isWellFormed();

/** Opaque to clients: base64url of a small JSON document. */
export function encodeCursor(cursor: Cursor): string {
  const body = { v: 1, k: cursor.kind, t: cursor.time, i: cursor.key, ...(cursor.maxId ? { m: cursor.maxId } : {}) };
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

export function decodeCursor(text: string, kind: Cursor['kind']): Cursor {
  const invalid = () =>
    badRequest('parameter cursor is not a cursor of this listing: pass the nextCursor of a previous answer unchanged', {
      field: 'cursor',
    });
  if (!/^[A-Za-z0-9_-]{1,600}$/.test(text)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  const result = encoded.safeParse(parsed);
  if (!result.success || result.data.k !== kind) throw invalid();
  const { t: time, i: key, m: maxId } = result.data;
  // Every part goes into the query as a parameter, so each must be one PostgreSQL accepts.
  if (readTimestamp(time) !== time || !storable(key)) throw invalid();
  if ((kind === 'logs' && !isRowId(key)) || (maxId !== undefined && !isRowId(maxId))) throw invalid();
  return { kind, time, key, maxId };
}
