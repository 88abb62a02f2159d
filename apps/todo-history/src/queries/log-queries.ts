import type { Executor } from 'postbox';
import { decodeCursor, encodeCursor, maxSnapshotLength } from './cursor.js';
import type { ListFilter } from './query-params.js';

export interface LogItem {
  id: number;
  timestamp: string;
  eventType: string;
  entity: string;
  entityId: string;
  groupId: string | null;
  groupName: string | null;
  taskId: string | null;
  taskName: string | null;
  changes: string | null;
  user: string | null;
  workspace: string | null;
  timestampFallback: boolean;
  messageId: string;
}

export interface GroupSummary {
  groupId: string;
  groupName: string | null;
  logCount: number;
  lastActivity: string;
}

export interface TaskSummary {
  taskId: string;
  taskName: string | null;
  logCount: number;
  lastActivity: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Microsecond, UTC text of a timestamptz: what cursors carry, so that no row is skipped or repeated. */
const exact = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export const logColumns = `l.id::text as id, ${exact('l."timestamp"')} as exact_time, l.event_type, l.entity, l.entity_id, l.group_id,
  l.group_name, l.task_id, l.task_name, l.changes, l.user_name, l.workspace, l.timestamp_fallback, l.message_id`;

export function toLogItem(row: Record<string, unknown>): LogItem {
  return {
    id: Number(row.id),
    timestamp: new Date(row.exact_time as string).toISOString(),
    eventType: row.event_type as string,
    entity: row.entity as string,
    entityId: row.entity_id as string,
    groupId: row.group_id as string | null,
    groupName: row.group_name as string | null,
    taskId: row.task_id as string | null,
    taskName: row.task_name as string | null,
    changes: row.changes as string | null,
    user: row.user_name as string | null,
    workspace: row.workspace as string | null,
    timestampFallback: row.timestamp_fallback as boolean,
    messageId: row.message_id as string,
  };
}

/** WHERE clauses built from fixed fragments; every value travels as a parameter. */
class Conditions {
  readonly params: unknown[] = [];
  private readonly parts: string[] = [];

  param(value: unknown): string {
    return `$${this.params.push(value)}`;
  }

  add(fragment: string): this {
    this.parts.push(fragment);
    return this;
  }

  filters(filter: ListFilter): this {
    if (filter.from) this.add(`l."timestamp" >= ${this.param(filter.from)}::timestamptz`);
    if (filter.to) this.add(`l."timestamp" < ${this.param(filter.to)}::timestamptz`);
    if (filter.eventType) this.add(`l.event_type = ${this.param(filter.eventType)}`);
    if (filter.user) this.add(`l.user_name = ${this.param(filter.user)}`);
    return this;
  }

  get sql(): string {
    return this.parts.length > 0 ? this.parts.join(' and ') : 'true';
  }
}

/**
 * History rows of a group (its own and its tasks') or of a task, newest first. Keyset pagination
 * on (timestamp desc, id desc): rows stored while a client pages never shift or repeat items.
 */
export async function listLogs(db: Executor, scope: { groupId: string } | { taskId: string }, filter: ListFilter): Promise<Page<LogItem>> {
  const where = new Conditions();
  if ('groupId' in scope) where.add(`l.group_id = ${where.param(scope.groupId)}`);
  else where.add(`l.task_id = ${where.param(scope.taskId)}`);
  where.filters(filter);
  if (filter.cursor) {
    const cursor = decodeCursor(filter.cursor, 'logs');
    const time = `${where.param(cursor.time)}::timestamptz`;
    where.add(`l."timestamp" <= ${time} and (l."timestamp" < ${time} or l.id < ${where.param(cursor.key)}::bigint)`);
  }
  const { rows } = await db.query(
    `select ${logColumns} from todo_event_logs l where ${where.sql}
     order by l."timestamp" desc, l.id desc limit ${where.param(filter.limit + 1)}`,
    where.params,
  );
  const page = rows.slice(0, filter.limit);
  const last = page.at(-1);
  return {
    items: page.map(toLogItem),
    nextCursor:
      rows.length > filter.limit && last ? encodeCursor({ kind: 'logs', time: last.exact_time as string, key: String(last.id) }) : null,
  };
}

interface SummaryQuery {
  kind: 'groups' | 'tasks';
  keyColumn: 'group_id' | 'task_id';
  nameColumn: 'group_name' | 'task_name';
  scope: (where: Conditions) => void;
}

/**
 * Entities with their number of history rows and latest activity, most recent first. The name is
 * the one carried by the entity's latest event. Pages after the first count only rows that
 * existed when the first page was read (the rows of transactions visible in its snapshot, which
 * the cursor carries), so entities keep their places while clients page. An id bound would not
 * do: the consumer's partitions write in parallel, so a lower id can commit later.
 */
async function listSummaries(db: Executor, query: SummaryQuery, filter: ListFilter): Promise<Page<Record<string, unknown>>> {
  const where = new Conditions();
  query.scope(where);
  where.filters(filter);
  const having: string[] = [];
  let snapshot: string | undefined;
  if (filter.cursor) {
    const cursor = decodeCursor(filter.cursor, query.kind);
    snapshot = cursor.snapshot;
    where.add(`pg_visible_in_snapshot(l.transaction_id, ${where.param(snapshot)}::pg_snapshot)`);
    const time = `${where.param(cursor.time)}::timestamptz`;
    having.push(`max(l."timestamp") < ${time} or (max(l."timestamp") = ${time} and l.${query.keyColumn} < ${where.param(cursor.key)})`);
  }
  // pg_current_snapshot() is the snapshot this very statement reads in.
  const { rows } = await db.query(
    `select l.${query.keyColumn} as key,
            (array_agg(l.${query.nameColumn} order by l."timestamp" desc, l.id desc) filter (where l.${query.nameColumn} is not null))[1] as name,
            count(*)::int as log_count, ${exact('max(l."timestamp")')} as last_exact, pg_current_snapshot()::text as snapshot
     from todo_event_logs l
     where ${where.sql}
     group by l.${query.keyColumn}
     ${having.length > 0 ? `having ${having.join(' and ')}` : ''}
     order by max(l."timestamp") desc, l.${query.keyColumn} desc
     limit ${where.param(filter.limit + 1)}`,
    where.params,
  );
  const page = rows.slice(0, filter.limit);
  const last = page.at(-1);
  snapshot ??= last ? boundedSnapshot(last.snapshot as string) : undefined;
  return {
    items: page,
    nextCursor:
      rows.length > filter.limit && last && snapshot
        ? encodeCursor({ kind: query.kind, time: last.last_exact as string, key: last.key as string, snapshot })
        : null,
  };
}

/**
 * The snapshot as the cursor carries it. With more transactions in progress than a cursor holds
 * (hundreds at once), it keeps only its lower bound: later pages then count the rows of
 * transactions finished before it, and may leave out a few rows the first page counted.
 */
function boundedSnapshot(snapshot: string): string {
  if (snapshot.length <= maxSnapshotLength) return snapshot;
  const xmin = snapshot.slice(0, snapshot.indexOf(':'));
  return `${xmin}:${xmin}:`;
}

export async function listGroupSummaries(db: Executor, filter: ListFilter): Promise<Page<GroupSummary>> {
  const page = await listSummaries(
    db,
    { kind: 'groups', keyColumn: 'group_id', nameColumn: 'group_name', scope: (where) => where.add('l.group_id is not null') },
    filter,
  );
  return {
    items: page.items.map((row) => ({
      groupId: row.key as string,
      groupName: row.name as string | null,
      logCount: Number(row.log_count),
      lastActivity: new Date(row.last_exact as string).toISOString(),
    })),
    nextCursor: page.nextCursor,
  };
}

export async function listTaskSummaries(db: Executor, groupId: string, filter: ListFilter): Promise<Page<TaskSummary>> {
  const page = await listSummaries(
    db,
    {
      kind: 'tasks',
      keyColumn: 'task_id',
      nameColumn: 'task_name',
      scope: (where) => where.add(`l.group_id = ${where.param(groupId)} and l.task_id is not null`),
    },
    filter,
  );
  return {
    items: page.items.map((row) => ({
      taskId: row.key as string,
      taskName: row.name as string | null,
      logCount: Number(row.log_count),
      lastActivity: new Date(row.last_exact as string).toISOString(),
    })),
    nextCursor: page.nextCursor,
  };
}
