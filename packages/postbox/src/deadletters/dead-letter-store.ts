import { defaults } from '../config/defaults.js';
import { PostboxError } from '../errors/postbox-error.js';
import type { Executor } from '../sql/database.js';

export type DeadLetterStatus = 'pending' | 'retrying' | 'retried' | 'discarded';

/** The message a group gave up on, and where it came from. */
interface DeadMessage {
  group: string;
  handler: string;
  source: 'log' | 'kafka';
  messageId: string;
  topic: string;
  type: string | null;
  key: string | null;
  payload: unknown;
  rawPayload: string | null;
  headers: Record<string, unknown>;
  sourcePosition: string;
  attempts: number;
  firstFailedAt: Date;
  lastFailedAt: Date;
}

export interface NewDeadLetter extends DeadMessage {
  error: Error;
}

export interface DeadLetter extends DeadMessage {
  id: string;
  errorCode: string | null;
  errorMessage: string;
  errorStack: string | null;
  status: DeadLetterStatus;
  resolvedAt: Date | null;
  createdAt: Date;
}

export interface DeadLetterFilter {
  group?: string;
  topic?: string;
  status?: DeadLetterStatus | 'open';
  limit?: number;
}

const columns = `id::text as id, group_name, handler, source, message_id, topic, type, key, payload, raw_payload, headers,
  source_position, error_code, error_message, error_stack, attempts, first_failed_at, last_failed_at, status, resolved_at, created_at`;

function toDeadLetter(row: Record<string, any>): DeadLetter {
  return {
    id: row.id,
    group: row.group_name,
    handler: row.handler,
    source: row.source,
    messageId: row.message_id,
    topic: row.topic,
    type: row.type,
    key: row.key,
    payload: row.payload,
    rawPayload: row.raw_payload,
    headers: row.headers,
    sourcePosition: row.source_position,
    errorCode: row.error_code,
    errorMessage: row.error_message,
    errorStack: row.error_stack,
    attempts: Number(row.attempts),
    firstFailedAt: new Date(row.first_failed_at),
    lastFailedAt: new Date(row.last_failed_at),
    status: row.status,
    resolvedAt: row.resolved_at ? new Date(row.resolved_at) : null,
    createdAt: new Date(row.created_at),
  };
}

function filterClause(filter: DeadLetterFilter, params: unknown[]): string {
  const where: string[] = [];
  if (filter.group !== undefined) where.push(`group_name = $${params.push(filter.group)}`);
  if (filter.topic !== undefined) where.push(`topic = $${params.push(filter.topic)}`);
  const status = filter.status ?? 'open';
  if (status === 'open') where.push(`status in ('pending', 'retrying')`);
  else where.push(`status = $${params.push(status)}`);
  return where.join(' and ');
}

function notFound(id: string): PostboxError {
  return new PostboxError(
    'POSTBOX_ERR_DEAD_LETTER_NOT_FOUND',
    `No open dead letter has id ${JSON.stringify(id)}; list them with \`postbox dead-letters list\`.`,
    { id },
  );
}

function checkId(id: string): string {
  if (!/^\d{1,18}$/.test(id)) throw notFound(id);
  return id;
}

/** The stable code an error carries (every PostboxError has one), as stored beside its message. */
export function errorCodeOf(error: Error): string | null {
  const code = (error as { code?: unknown }).code;
  return code === undefined ? null : String(code);
}

/**
 * Stores a message its group gave up on. A message dead-lettered again while its entry is still
 * open (redelivery after a crash) updates that entry rather than adding a second one.
 */
export async function addDeadLetter(db: Executor, entry: NewDeadLetter): Promise<void> {
  await db.query(
    `insert into postbox.dead_letters (group_name, handler, source, message_id, topic, type, key, payload, raw_payload, headers,
       source_position, error_code, error_message, error_stack, attempts, first_failed_at, last_failed_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10::jsonb, $11, $12, $13, $14, $15, $16, $17)
     on conflict (group_name, message_id) where status in ('pending', 'retrying') do update
       set attempts = postbox.dead_letters.attempts + excluded.attempts,
           last_failed_at = excluded.last_failed_at,
           error_code = excluded.error_code,
           error_message = excluded.error_message,
           error_stack = excluded.error_stack,
           status = 'pending'`,
    [
      entry.group,
      entry.handler,
      entry.source,
      entry.messageId,
      entry.topic,
      entry.type,
      entry.key,
      entry.payload === undefined ? null : JSON.stringify(entry.payload),
      entry.rawPayload,
      JSON.stringify(entry.headers),
      entry.sourcePosition,
      errorCodeOf(entry.error),
      entry.error.message || entry.error.name,
      entry.error.stack ?? null,
      entry.attempts,
      entry.firstFailedAt,
      entry.lastFailedAt,
    ],
  );
}

export async function listDeadLetters(db: Executor, filter: DeadLetterFilter = {}): Promise<DeadLetter[]> {
  const params: unknown[] = [];
  const where = filterClause(filter, params);
  const limit = `$${params.push(filter.limit ?? 100)}`;
  const { rows } = await db.query(`select ${columns} from postbox.dead_letters where ${where} order by id limit ${limit}`, params);
  return rows.map(toDeadLetter);
}

export async function getDeadLetter(db: Executor, id: string): Promise<DeadLetter> {
  const { rows } = await db.query(`select ${columns} from postbox.dead_letters where id = $1::bigint`, [checkId(id)]);
  if (!rows[0]) throw notFound(id);
  return toDeadLetter(rows[0]);
}

/** Asks the dead letters' group to handle them again; the router of that group picks them up. */
export async function retryDeadLetters(db: Executor, target: { id: string } | DeadLetterFilter): Promise<number> {
  return resolve(db, target, 'retrying', `status = 'pending'`);
}

export async function discardDeadLetters(db: Executor, target: { id: string } | DeadLetterFilter): Promise<number> {
  return resolve(db, target, 'discarded', `status in ('pending', 'retrying')`);
}

async function resolve(db: Executor, target: { id: string } | DeadLetterFilter, status: DeadLetterStatus, from: string): Promise<number> {
  const params: unknown[] = [status];
  let where: string;
  if ('id' in target) {
    where = `id = $${params.push(checkId(target.id))}::bigint and ${from}`;
  } else {
    where = `${filterClause({ ...target, status: undefined }, params)} and ${from}`;
  }
  const { rowCount } = await db.query(
    `update postbox.dead_letters set status = $1, resolved_at = case when $1 = 'discarded' then now() else resolved_at end where ${where}`,
    params,
  );
  if ('id' in target && rowCount === 0) throw notFound(target.id);
  if (rowCount > 0) await db.query('select pg_notify($1, $2)', [defaults.deadLetterChannel, 'retry']);
  return rowCount;
}

/** Whether a group has dead letters waiting to be retried: one indexed lookup, outside any transaction. */
export async function hasRetries(db: Executor, group: string): Promise<boolean> {
  const { rows } = await db.query(`select 1 from postbox.dead_letters where group_name = $1 and status = 'retrying' limit 1`, [group]);
  return rows.length > 0;
}

/** Takes dead letters of a group that were asked to be retried, locking them for this transaction. */
export async function claimRetries(tx: Executor, group: string, limit: number): Promise<DeadLetter[]> {
  const { rows } = await tx.query(
    `select ${columns} from postbox.dead_letters where group_name = $1 and status = 'retrying' order by id limit $2 for update skip locked`,
    [group, limit],
  );
  return rows.map(toDeadLetter);
}

export async function markRetried(tx: Executor, id: string): Promise<void> {
  await tx.query(`update postbox.dead_letters set status = 'retried', resolved_at = now() where id = $1::bigint`, [id]);
}

export async function deadLetterCounts(db: Executor): Promise<{ group: string; status: DeadLetterStatus; count: number }[]> {
  const { rows } = await db.query<{ group_name: string; status: DeadLetterStatus; n: number }>(
    `select group_name, status, count(*)::int as n from postbox.dead_letters where status in ('pending', 'retrying') group by 1, 2 order by 1, 2`,
  );
  return rows.map((row) => ({ group: row.group_name, status: row.status, count: Number(row.n) }));
}
