import { defaults } from '../config/defaults.js';
import { PostboxError, ValidationError } from '../errors/postbox-error.js';
import type { Database, Executor } from '../sql/database.js';
import { deadLetterJoin, type ParkedMessage, type ParkedStatus, parkedColumns, parkedStatuses, toParkedMessage } from './parked-message.js';
import { parkedLane, unpark } from './parked-store.js';

export interface ParkedFilter {
  group?: string;
  key?: string;
  status?: ParkedStatus;
  /** At most this many; defaults.router.park.listLimit when not given. */
  limit?: number;
}

/** A key of a group, or the parked message of that id (its key, or itself when it has none). */
export type ParkedTarget = { group: string; key: string } | { id: string };

/** Parked messages of a group, by status, for the metrics and `postbox status`. */
export interface ParkedCount {
  group: string;
  waiting: number;
  followers: number;
  deadLettered: number;
  total: number;
  /** How long the group's oldest parked message has been parked. */
  oldestSeconds: number;
}

function notFound(what: string, details: Record<string, unknown>): PostboxError {
  return new PostboxError(
    'POSTBOX_ERR_PARKED_NOT_FOUND',
    `${what}; list parked messages with \`postbox parked list --group <group>\`.`,
    details,
  );
}

function checkId(id: unknown): string {
  if (typeof id !== 'string' || !/^\d{1,18}$/.test(id)) throw notFound(`No parked message has id ${JSON.stringify(id)}`, { id });
  return id;
}

function checkText(name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `${name} must be a non-empty string (got ${JSON.stringify(value)}).`, {
      option: name,
    });
  }
  return value;
}

/** Parked messages, each key's in log order (the first of a key is the one attempted next). */
export async function listParked(db: Executor, filter: ParkedFilter = {}): Promise<ParkedMessage[]> {
  const params: unknown[] = [];
  const where: string[] = [];
  if (filter.group !== undefined) where.push(`p.group_name = $${params.push(checkText('group', filter.group))}`);
  if (filter.key !== undefined) where.push(`p.key = $${params.push(checkText('key', filter.key))}`);
  if (filter.status !== undefined) {
    if (!parkedStatuses.includes(filter.status)) {
      throw new ValidationError(
        'POSTBOX_ERR_BAD_OPTION',
        `status must be one of ${parkedStatuses.join(', ')} (got ${JSON.stringify(filter.status)}).`,
        {
          option: 'status',
        },
      );
    }
    where.push(`p.status = $${params.push(filter.status)}`);
  }
  const limit = filter.limit ?? defaults.router.park.listLimit;
  if (!Number.isSafeInteger(limit) || limit <= 0) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `limit must be a positive integer (got ${String(filter.limit)}).`, {
      option: 'limit',
    });
  }
  const { rows } = await db.query(
    `select ${parkedColumns}, d.id::text as dead_letter_id
     from postbox.parked_messages p ${deadLetterJoin}
     ${where.length > 0 ? `where ${where.join(' and ')}` : ''}
     order by p.group_name, p.key nulls last, p.transaction_id, p.global_position
     limit $${params.push(limit)}`,
    params,
  );
  return rows.map(toParkedMessage);
}

/** The first parked message of the target's key (the target itself when it has no key), locked for tx. */
async function firstOf(tx: Executor, target: ParkedTarget): Promise<ParkedMessage> {
  let group: string;
  let head: Pick<ParkedMessage, 'id' | 'key'>;
  if ('id' in target) {
    const { rows } = await tx.query<{ group_name: string; key: string | null }>(
      'select group_name, key from postbox.parked_messages where id = $1::bigint',
      [checkId(target.id)],
    );
    const row = rows[0];
    if (!row) throw notFound(`No parked message has id ${target.id}`, { id: target.id });
    group = row.group_name;
    head = { id: target.id, key: row.key };
  } else {
    group = checkText('group', target.group);
    head = { id: '0', key: checkText('key', target.key) };
  }
  const [first] = await parkedLane(tx, group, head, 1, true);
  if (!first) {
    throw 'id' in target
      ? notFound(`No parked message has id ${target.id}`, { id: target.id })
      : notFound(`Group ${group} has nothing parked under key ${JSON.stringify(head.key)}`, { group, key: head.key });
  }
  return first;
}

async function tellReaders(tx: Executor, group: string): Promise<void> {
  await tx.query('select pg_notify($1, $2)', [defaults.parkedChannel, group]);
}

/**
 * Releases a key now: its first parked message is attempted at once by the process that reads its
 * partition (a failed one counts as one more attempt from parking), and the rest follow in order. A
 * key held by a dead letter stops being held: its later messages are handled, and the dead letter
 * stays open. Returns the message released.
 */
export async function releaseParked(db: Database, target: ParkedTarget): Promise<ParkedMessage> {
  return db.transaction(async (tx) => {
    const first = await firstOf(tx, target);
    if (first.status === 'dead_lettered') {
      await unpark(tx, first.id);
    } else {
      await tx.query('update postbox.parked_messages set next_attempt_at = now() where id = $1::bigint', [first.id]);
    }
    await tellReaders(tx, first.group);
    return first;
  });
}

/**
 * Discards one parked message: it will not be attempted, and the next of its key comes due. A
 * message that waited for an attempt, or behind another, is kept on record as a discarded dead
 * letter; one that went to dead letters already stays there, open, and its key is no longer held.
 */
export async function discardParked(db: Database, id: string): Promise<ParkedMessage> {
  checkId(id);
  return db.transaction(async (tx) => {
    const { rows } = await tx.query(`select ${parkedColumns} from postbox.parked_messages p where p.id = $1::bigint for update`, [id]);
    if (!rows[0]) throw notFound(`No parked message has id ${id}`, { id });
    const parked = toParkedMessage(rows[0]);
    if (parked.status !== 'dead_lettered') await recordDiscarded(tx, parked);
    await unpark(tx, parked.id);
    await tellReaders(tx, parked.group);
    return parked;
  });
}

async function recordDiscarded(tx: Executor, parked: ParkedMessage): Promise<void> {
  const never = 'Never attempted: it waited behind an earlier message of its key.';
  await tx.query(
    `insert into postbox.dead_letters (group_name, handler, source, message_id, topic, type, key, payload, headers, source_position,
       error_code, error_message, attempts, first_failed_at, last_failed_at, status, resolved_at, resolution)
     values ($1, $2, 'log', $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $11, $12, $13, $14, 'discarded', now(), $15)`,
    [
      parked.group,
      parked.handler,
      parked.messageId,
      parked.topic,
      parked.type,
      parked.key,
      JSON.stringify(parked.payload),
      JSON.stringify(parked.headers),
      `${parked.position.transactionId}/${parked.position.globalPosition}`,
      parked.errorCode,
      parked.errorMessage ?? never,
      parked.attempts,
      parked.firstFailedAt ?? parked.parkedAt,
      parked.lastFailedAt ?? parked.parkedAt,
      'discarded while parked',
    ],
  );
}

export async function parkedCounts(db: Executor): Promise<ParkedCount[]> {
  const { rows } = await db.query<{
    group_name: string;
    waiting: number;
    followers: number;
    dead_lettered: number;
    total: number;
    oldest_seconds: number;
  }>(
    `select group_name,
            count(*) filter (where status = 'waiting')::int as waiting,
            count(*) filter (where status = 'follower')::int as followers,
            count(*) filter (where status = 'dead_lettered')::int as dead_lettered,
            count(*)::int as total,
            extract(epoch from now() - min(parked_at))::float8 as oldest_seconds
     from postbox.parked_messages group by group_name order by group_name`,
  );
  return rows.map((row) => ({
    group: row.group_name,
    waiting: Number(row.waiting),
    followers: Number(row.followers),
    deadLettered: Number(row.dead_lettered),
    total: Number(row.total),
    oldestSeconds: Math.max(0, Number(row.oldest_seconds)),
  }));
}
