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
  /**
   * Summaries: the snapshot their first page was read in (pg_snapshot text). Later pages count only
   * the rows of transactions visible in it, so rows added while a client pages do not move entities
   * between pages, even when they were written by transactions that commit out of order.
   */
  snapshot?: string;
}

/** Longest snapshot a cursor carries: about 300 transactions in progress at once. */
export const maxSnapshotLength = 6_000;

const encoded = z.object({
  v: z.literal(1),
  k: z.enum(['logs', 'groups', 'tasks']),
  t: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/),
  i: z.string().min(1).max(200),
  s: z.string().max(maxSnapshotLength).optional(),
});

const maxBigint = 2n ** 63n - 1n;

/** A bigint row id: digits, within PostgreSQL's bigint. */
function isRowId(text: string): boolean {
  return /^\d{1,19}$/.test(text) && BigInt(text) <= maxBigint;
}

const storable = (text: string) => !text.includes('\u0000') && text.isWellFormed();

const maxXid8 = 2n ** 64n - 1n;

/** An xid8 in decimal: digits, within 64 bits. */
function isXid8(text: string): boolean {
  return /^(0|[1-9]\d{0,19})$/.test(text) && BigInt(text) <= maxXid8;
}

/**
 * A pg_snapshot as PostgreSQL writes and reads it: `xmin:xmax:xip,...`, with 0 < xmin <= xmax and
 * the transactions in progress in ascending order within [xmin, xmax). Anything else would make the
 * server refuse the query.
 */
function isSnapshot(text: string): boolean {
  const parts = text.split(':');
  if (parts.length !== 3) return false;
  const [xminText = '', xmaxText = '', xipText = ''] = parts;
  if (!isXid8(xminText) || !isXid8(xmaxText)) return false;
  const xmin = BigInt(xminText);
  const xmax = BigInt(xmaxText);
  if (xmin === 0n || xmax < xmin) return false;
  if (xipText === '') return true;
  let previous = -1n;
  for (const xipPart of xipText.split(',')) {
    if (!isXid8(xipPart)) return false;
    const xip = BigInt(xipPart);
    if (xip <= previous || xip < xmin || xip >= xmax) return false;
    previous = xip;
  }
  return true;
}

/** Opaque to clients: base64url of a small JSON document. */
export function encodeCursor(cursor: Cursor): string {
  const body = { v: 1, k: cursor.kind, t: cursor.time, i: cursor.key, ...(cursor.snapshot ? { s: cursor.snapshot } : {}) };
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

export function decodeCursor(text: string, kind: Cursor['kind']): Cursor {
  const invalid = () =>
    badRequest('parameter cursor is not a cursor of this listing: pass the nextCursor of a previous answer unchanged', {
      field: 'cursor',
    });
  if (!/^[A-Za-z0-9_-]{1,9000}$/.test(text)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  const result = encoded.safeParse(parsed);
  if (!result.success || result.data.k !== kind) throw invalid();
  const { t: time, i: key, s: snapshot } = result.data;
  // Every part goes into the query as a parameter, so each must be one PostgreSQL accepts.
  if (readTimestamp(time) !== time || !storable(key)) throw invalid();
  if (kind === 'logs' ? !isRowId(key) || snapshot !== undefined : snapshot === undefined || !isSnapshot(snapshot)) throw invalid();
  return { kind, time, key, snapshot };
}

/**
 * Where a live feed stands: the last row it pushed, as (transaction_id, id). The feed reads rows in
 * that order, below the visibility watermark, so a row whose transaction commits late is not passed.
 */
export interface FeedCursor {
  /** The transaction that stored the row (xid8, decimal); 0 for rows stored before transaction ids were recorded. */
  transactionId: string;
  /** The row's id (bigint, decimal). */
  id: string;
}

/** The feed's start: before every row. */
export const feedStart: FeedCursor = Object.freeze({ transactionId: '0', id: '0' });

const feedCursorText = /^(0|[1-9]\d{0,19})\.(0|[1-9]\d{0,18})$/;

/** The SSE event id of a row: `<transaction_id>.<id>`, both decimal. */
export function encodeFeedCursor(cursor: FeedCursor): string {
  return `${cursor.transactionId}.${cursor.id}`;
}

/**
 * A feed cursor as a client sends it back (`after`, `Last-Event-ID`): `<transaction_id>.<id>` in
 * plain decimal, within xid8 and bigint, or `0` for the beginning; undefined for anything else.
 */
export function decodeFeedCursor(text: string): FeedCursor | undefined {
  if (text === '0') return feedStart;
  const match = feedCursorText.exec(text);
  if (!match) return undefined;
  const [, transactionId = '', id = ''] = match;
  if (BigInt(transactionId) > maxXid8 || BigInt(id) > maxBigint) return undefined;
  return { transactionId, id };
}
