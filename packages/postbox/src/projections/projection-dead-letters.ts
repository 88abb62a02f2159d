import type { DeadLetterStatus } from '../deadletters/dead-letter-store.js';
import { ValidationError } from '../errors/postbox-error.js';
import type { Executor } from '../sql/database.js';
import { projectionGroup } from './projection.js';
import { getProjection, notFound } from './projection-store.js';

/** A dead letter of one of a projection's versions. */
export interface ProjectionDeadLetter {
  id: string;
  /** The read-model version whose group gave up on the event. */
  version: number;
  status: DeadLetterStatus;
  messageId: string;
  type: string | null;
  key: string | null;
  errorMessage: string;
  /** Why the library resolved it (a version swapped out by a rebuild); null otherwise. */
  resolution: string | null;
  attempts: number;
  lastFailedAt: Date;
  resolvedAt: Date | null;
}

export interface ProjectionDeadLetterFilter {
  /** Resolved ones too (retried, discarded, superseded by a rebuild); only open ones by default. */
  all?: boolean;
  limit?: number;
}

interface Row {
  id: string;
  version: number;
  status: DeadLetterStatus;
  message_id: string;
  type: string | null;
  key: string | null;
  error_message: string;
  resolution: string | null;
  attempts: number;
  last_failed_at: Date | string;
  resolved_at: Date | string | null;
}

/**
 * The dead letters of every version a projection has had, oldest first: open ones by default, and
 * with `all` the resolved ones with why (a version swapped out by a rebuild has no group left to
 * retry its dead letters, so the swap discards them and says what the new version did instead).
 */
export async function listProjectionDeadLetters(
  db: Executor,
  name: string,
  filter: ProjectionDeadLetterFilter = {},
): Promise<ProjectionDeadLetter[]> {
  const limit = filter.limit ?? 100;
  if (!Number.isSafeInteger(limit) || limit <= 0) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `limit must be a positive integer (got ${String(limit)}).`, { option: 'limit' });
  }
  const projection = await getProjection(db, name);
  if (!projection) throw notFound(name);
  const versions = Math.max(projection.activeVersion, projection.rebuildVersion ?? 0);
  const groups = Array.from({ length: versions }, (_, index) => projectionGroup(name, index + 1));
  const { rows } = await db.query<Row>(
    `select d.id::text as id, g.version, d.status, d.message_id, d.type, d.key, d.error_message, d.resolution, d.attempts,
            d.last_failed_at, d.resolved_at
     from unnest($1::text[]) with ordinality as g(group_name, version)
     join postbox.dead_letters d on d.group_name = g.group_name
     where $2::boolean or d.status in ('pending', 'retrying')
     order by d.id
     limit $3`,
    [groups, filter.all === true, limit],
  );
  return rows.map((row) => ({
    id: row.id,
    version: Number(row.version),
    status: row.status,
    messageId: row.message_id,
    type: row.type,
    key: row.key,
    errorMessage: row.error_message,
    resolution: row.resolution,
    attempts: Number(row.attempts),
    lastFailedAt: new Date(row.last_failed_at),
    resolvedAt: row.resolved_at === null ? null : new Date(row.resolved_at),
  }));
}
