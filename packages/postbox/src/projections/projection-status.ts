import { groupStatuses } from '../consumers/status.js';
import type { Executor } from '../sql/database.js';
import { projectionGroup } from './projection.js';
import { listProjections, type ProjectionRecord, type ProjectionState } from './projection-store.js';

export interface ProjectionStatus {
  name: string;
  status: ProjectionState;
  categories: string[];
  activeVersion: number;
  /** The group that builds the active version. */
  group: string;
  /** Events the active version has yet to apply, and the age of the oldest. */
  lagEvents: number;
  lagSeconds: number;
  failures: number;
  lastError: string | null;
  lastErrorAt: Date | null;
  /** The version being built, while a rebuild is under way. */
  rebuild: { version: number; group: string; lagEvents: number; startedAt: Date | null } | null;
  updatedAt: Date;
}

async function backlog(db: Executor, topics: readonly string[]): Promise<{ events: number; seconds: number }> {
  const { rows } = await db.query<{ events: number; seconds: number }>(
    `select messages::int as events, coalesce(extract(epoch from now() - oldest), 0)::float8 as seconds
     from postbox.backlog($1::text[], '0', 0)`,
    [[...topics]],
  );
  return { events: Number(rows[0]?.events ?? 0), seconds: Number(rows[0]?.seconds ?? 0) };
}

/** Projections with their lag, read from their consumer groups (a group not created yet lags by its whole categories). */
export async function projectionStatuses(db: Executor, name?: string): Promise<ProjectionStatus[]> {
  const records = (await listProjections(db)).filter((record) => name === undefined || record.name === name);
  if (records.length === 0) return [];
  const groups = new Map((await groupStatuses(db)).map((group) => [group.group, group]));
  const lagOf = async (record: ProjectionRecord, version: number) => {
    const group = groups.get(projectionGroup(record.name, version));
    if (group) return { events: group.lagMessages, seconds: group.lagSeconds };
    return backlog(db, record.categories);
  };
  const statuses: ProjectionStatus[] = [];
  for (const record of records) {
    const active = await lagOf(record, record.activeVersion);
    const rebuild = record.rebuildVersion === null ? null : await lagOf(record, record.rebuildVersion);
    statuses.push({
      name: record.name,
      status: record.status,
      categories: record.categories,
      activeVersion: record.activeVersion,
      group: projectionGroup(record.name, record.activeVersion),
      lagEvents: active.events,
      lagSeconds: active.seconds,
      failures: record.failures,
      lastError: record.lastError,
      lastErrorAt: record.lastErrorAt,
      rebuild:
        record.rebuildVersion === null || rebuild === null
          ? null
          : {
              version: record.rebuildVersion,
              group: projectionGroup(record.name, record.rebuildVersion),
              lagEvents: rebuild.events,
              startedAt: record.rebuildStartedAt,
            },
      updatedAt: record.updatedAt,
    });
  }
  return statuses;
}
