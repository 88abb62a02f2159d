import { PostboxError } from '../errors/postbox-error.js';
import type { Executor } from '../sql/database.js';
import { projectionGroup } from './projection.js';

export const projectionsChannel = 'postbox_projections';

export type ProjectionState = 'running' | 'stopped' | 'faulted' | 'rebuilding';

export interface ProjectionRecord {
  name: string;
  categories: string[];
  status: ProjectionState;
  activeVersion: number;
  rebuildVersion: number | null;
  preparedVersion: number;
  paused: boolean;
  faulted: boolean;
  failures: number;
  lastError: string | null;
  lastErrorAt: Date | null;
  rebuildStartedAt: Date | null;
  updatedAt: Date;
}

const columns = `name, categories, status, active_version, rebuild_version, prepared_version, paused, faulted, failures,
  last_error, last_error_at, rebuild_started_at, updated_at`;

function toRecord(row: Record<string, any>): ProjectionRecord {
  return {
    name: row.name,
    categories: row.categories,
    status: row.status,
    activeVersion: Number(row.active_version),
    rebuildVersion: row.rebuild_version === null ? null : Number(row.rebuild_version),
    preparedVersion: Number(row.prepared_version),
    paused: row.paused,
    faulted: row.faulted,
    failures: Number(row.failures),
    lastError: row.last_error,
    lastErrorAt: row.last_error_at ? new Date(row.last_error_at) : null,
    rebuildStartedAt: row.rebuild_started_at ? new Date(row.rebuild_started_at) : null,
    updatedAt: new Date(row.updated_at),
  };
}

export function notFound(name: string): PostboxError {
  return new PostboxError(
    'POSTBOX_ERR_PROJECTION_NOT_FOUND',
    `No projection is named ${JSON.stringify(name)}; list them with \`postbox projections list\`.`,
    { projection: name },
  );
}

/** Registers a projection; true when it is new. Categories are kept up to date. */
export async function registerProjection(tx: Executor, name: string, categories: readonly string[]): Promise<boolean> {
  const { rows } = await tx.query<{ inserted: boolean }>(
    `insert into postbox.projections as p (name, categories) values ($1, $2::text[])
     on conflict (name) do update set categories = excluded.categories, updated_at = now()
       where p.categories is distinct from excluded.categories
     returning (xmax = 0) as inserted`,
    [name, [...categories]],
  );
  return rows[0]?.inserted === true;
}

export async function getProjection(db: Executor, name: string, forUpdate = false): Promise<ProjectionRecord | undefined> {
  const { rows } = await db.query(`select ${columns} from postbox.projections where name = $1${forUpdate ? ' for update' : ''}`, [name]);
  return rows[0] ? toRecord(rows[0]) : undefined;
}

export async function listProjections(db: Executor): Promise<ProjectionRecord[]> {
  const { rows } = await db.query(`select ${columns} from postbox.projections order by name`);
  return rows.map(toRecord);
}

async function notify(db: Executor, name: string): Promise<void> {
  await db.query('select pg_notify($1, $2)', [projectionsChannel, name]);
}

async function setGroupsStatus(db: Executor, record: ProjectionRecord, status: 'active' | 'paused'): Promise<void> {
  const groups = [record.activeVersion, ...(record.rebuildVersion ? [record.rebuildVersion] : [])].map((version) =>
    projectionGroup(record.name, version),
  );
  await db.query('update postbox.consumer_groups set status = $2, updated_at = now() where group_name = any($1::text[])', [groups, status]);
}

/**
 * Pauses a projection: its groups stop being leased, so every process running it stops within a
 * lease renewal, and a batch in flight rolls back. Its status shows `stopped`.
 */
export async function pauseProjection(db: Executor, name: string): Promise<ProjectionRecord> {
  const { rows } = await db.query(`update postbox.projections set paused = true, updated_at = now() where name = $1 returning ${columns}`, [
    name,
  ]);
  if (!rows[0]) throw notFound(name);
  const record = toRecord(rows[0]);
  await setGroupsStatus(db, record, 'paused');
  await notify(db, name);
  return record;
}

/**
 * Resumes a paused projection, and clears its failure count. A faulted projection needs no resume:
 * it returns to running on its first batch that commits.
 */
export async function resumeProjection(db: Executor, name: string): Promise<ProjectionRecord> {
  const { rows } = await db.query(
    `update postbox.projections set paused = false, faulted = false, failures = 0, updated_at = now() where name = $1 returning ${columns}`,
    [name],
  );
  if (!rows[0]) throw notFound(name);
  const record = toRecord(rows[0]);
  await setGroupsStatus(db, record, 'active');
  await notify(db, name);
  return record;
}

/** Asks for a rebuild: the running process builds the next version beside the active one and swaps when it has caught up. */
export async function requestRebuild(db: Executor, name: string): Promise<ProjectionRecord> {
  const { rows } = await db.query(
    `update postbox.projections
     set rebuild_version = coalesce(rebuild_version, active_version + 1),
         rebuild_started_at = coalesce(rebuild_started_at, now()), updated_at = now()
     where name = $1 returning ${columns}`,
    [name],
  );
  if (!rows[0]) throw notFound(name);
  await notify(db, name);
  return toRecord(rows[0]);
}

/** Counts a failed batch; faulted once failures reach maxFailures. */
export async function recordProjectionFailure(db: Executor, name: string, error: unknown, maxFailures: number): Promise<void> {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  await db.query(
    `update postbox.projections
     set failures = failures + 1, faulted = failures + 1 >= $3, last_error = $2, last_error_at = now(), updated_at = now()
     where name = $1`,
    [name, message.slice(0, 2_000), maxFailures],
  );
}

export async function clearProjectionFailures(db: Executor, name: string): Promise<void> {
  await db.query(
    `update postbox.projections set failures = 0, faulted = false, updated_at = now() where name = $1 and (failures > 0 or faulted)`,
    [name],
  );
}

/** Records that a version's read model exists. */
export async function markPrepared(tx: Executor, name: string, version: number): Promise<void> {
  await tx.query('update postbox.projections set prepared_version = greatest(prepared_version, $2) where name = $1', [name, version]);
}

/** What a swap did: undefined when another process swapped first. */
export interface SwapOutcome {
  /** Open dead letters of the old version, now discarded with a resolution that says why. */
  supersededDeadLetters: number;
}

/**
 * Makes the rebuilt version the active one and deletes the old version's group. The old version's
 * open dead letters go with it: the new version has read every event from the beginning itself, so
 * each of them either went through there or has a dead letter of the new version's group. They are
 * discarded with a resolution that says which, and stay on record.
 */
export async function swapActiveVersion(tx: Executor, name: string, from: number, to: number): Promise<SwapOutcome | undefined> {
  const { rowCount } = await tx.query(
    `update postbox.projections
     set active_version = $3, rebuild_version = null, rebuild_started_at = null, updated_at = now()
     where name = $1 and active_version = $2 and rebuild_version = $3`,
    [name, from, to],
  );
  if (rowCount === 0) return undefined;
  const superseded = await supersedeDeadLetters(tx, name, from, to);
  await tx.query('delete from postbox.consumer_groups where group_name = $1', [projectionGroup(name, from)]);
  await notify(tx, name);
  return { supersededDeadLetters: superseded };
}

async function supersedeDeadLetters(tx: Executor, name: string, from: number, to: number): Promise<number> {
  const { rowCount } = await tx.query(
    `update postbox.dead_letters d
     set status = 'discarded',
         resolved_at = now(),
         resolution = format(
           'superseded: projection %s was rebuilt and version %s swapped in for version %s; version %s reads every event from the beginning itself and %s',
           $1::text, $3::int, $2::int, $3::int,
           coalesce(
             (select format('dead-lettered this event too, as dead letter %s (retry that one)', n.id)
              from postbox.dead_letters n
              where n.group_name = $5 and n.message_id = d.message_id and n.status in ('pending', 'retrying')
              order by n.id limit 1),
             'had not dead-lettered this event when it was swapped in'))
     where d.group_name = $4 and d.status in ('pending', 'retrying')`,
    [name, from, to, projectionGroup(name, from), projectionGroup(name, to)],
  );
  return rowCount;
}
