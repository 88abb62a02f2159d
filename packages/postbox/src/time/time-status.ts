import { defaults } from '../config/defaults.js';
import type { Executor } from '../sql/database.js';

/** What waits for its time, and whether a process is there to move it. */
export interface TimeStatus {
  /** Messages waiting for their time. */
  scheduledMessages: number;
  /** Of them, those already due: the timekeeper moves them within moments while one runs. */
  dueMessages: number;
  /** When the soonest waiting message falls due; null when none waits. */
  nextDueAt: Date | null;
  activeSchedules: number;
  pausedSchedules: number;
  /** How long the oldest due message or tick of an active schedule has waited past its time; 0 when none. */
  overdueSeconds: number;
  /** The process that runs the timekeeper now; null when none does. */
  timekeeper: { owner: string; since: Date } | null;
}

interface CountsRow {
  scheduled: string | number;
  due: string | number;
  next_due_at: number | null;
  active: string | number;
  paused: string | number;
}

export async function timeStatus(db: Executor): Promise<TimeStatus> {
  const { rows } = await db.query<CountsRow>(
    `select (select count(*) from postbox.scheduled_messages) as scheduled,
            (select count(*) from postbox.scheduled_messages where due_at <= now()) as due,
            (extract(epoch from (select min(due_at) from postbox.scheduled_messages)) * 1000)::float8 as next_due_at,
            (select count(*) from postbox.schedules where status = 'active') as active,
            (select count(*) from postbox.schedules where status = 'paused') as paused`,
  );
  const row = rows[0] as CountsRow;
  return {
    scheduledMessages: Number(row.scheduled),
    dueMessages: Number(row.due),
    nextDueAt: row.next_due_at === null ? null : new Date(row.next_due_at),
    activeSchedules: Number(row.active),
    pausedSchedules: Number(row.paused),
    ...(await overdue(db)),
  };
}

/**
 * How long the oldest due message or tick of an active schedule has waited past its time (0 when
 * none), and who keeps time: for readiness probes, from the indexes alone, however long the list.
 */
export async function overdue(db: Executor): Promise<Pick<TimeStatus, 'overdueSeconds' | 'timekeeper'>> {
  const { rows } = await db.query<{ overdue_seconds: number; owner: string | null; since: number | null }>(
    `select greatest(0, extract(epoch from now() - least(
              (select min(due_at) from postbox.scheduled_messages),
              (select min(next_tick_at) from postbox.schedules where status = 'active'))))::float8 as overdue_seconds,
            l.owner, (extract(epoch from l.acquired_at) * 1000)::float8 as since
     from (select 1) one
     left join postbox.leases l on l.name = $1 and l.expires_at > now()`,
    [defaults.timekeeper.leaseName],
  );
  const row = rows[0];
  return {
    overdueSeconds: Number(row?.overdue_seconds ?? 0),
    timekeeper: row?.owner && row.since !== null ? { owner: row.owner, since: new Date(row.since) } : null,
  };
}
