import { PostboxError, ValidationError } from '../errors/postbox-error.js';
import type { MessageHeaders } from '../log/message.js';
import type { ValidationLimits } from '../outbox/validate.js';
import type { Database, Executor } from '../sql/database.js';
import { cronTicks } from './cron.js';
import type { MissedPolicy } from './missed-ticks.js';
import { checkSchedule, type ScheduleDefinition } from './schedule-definition.js';

export type ScheduleStatus = 'active' | 'paused';

/** A schedule as stored. */
export interface Schedule {
  name: string;
  cron: string;
  timeZone: string;
  message: { topic: string; type: string; key: string | null; payload: unknown; headers: MessageHeaders };
  missed: MissedPolicy;
  status: ScheduleStatus;
  /** The earliest tick not yet appended; null once the expression has no tick left. */
  nextTickAt: Date | null;
  /** The latest tick appended. */
  lastTickAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

interface ScheduleRow {
  name: string;
  cron: string;
  time_zone: string;
  topic: string;
  type: string;
  key: string | null;
  payload: unknown;
  headers: MessageHeaders;
  missed: MissedPolicy;
  status: ScheduleStatus;
  next_tick_at: number | null;
  last_tick_at: number | null;
  created_at: number;
  updated_at: number;
}

const scheduleColumns = `name, cron, time_zone, topic, type, key, payload, headers, missed, status,
  (extract(epoch from next_tick_at) * 1000)::float8 as next_tick_at, (extract(epoch from last_tick_at) * 1000)::float8 as last_tick_at,
  (extract(epoch from created_at) * 1000)::float8 as created_at, (extract(epoch from updated_at) * 1000)::float8 as updated_at`;

function toSchedule(row: ScheduleRow): Schedule {
  const at = (value: number | null) => (value === null ? null : new Date(value));
  return {
    name: row.name,
    cron: row.cron,
    timeZone: row.time_zone,
    message: { topic: row.topic, type: row.type, key: row.key, payload: row.payload, headers: row.headers },
    missed: row.missed,
    status: row.status,
    nextTickAt: at(row.next_tick_at),
    lastTickAt: at(row.last_tick_at),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

export function scheduleNotFound(name: string): PostboxError {
  return new PostboxError(
    'POSTBOX_ERR_SCHEDULE_NOT_FOUND',
    `No schedule is named ${JSON.stringify(name)}; \`postbox schedules list\` shows them.`,
    {
      schedule: name,
    },
  );
}

/** The database's clock, which every tick is computed against. */
async function databaseNow(tx: Executor): Promise<Date> {
  const { rows } = await tx.query<{ now: number }>('select (extract(epoch from now()) * 1000)::float8 as now');
  return new Date((rows[0] as { now: number }).now);
}

/**
 * Creates a schedule, or changes the one of that name: code that defines its schedules at each
 * start-up upserts them. A new schedule's first tick is the first after now. A changed expression or
 * time zone starts over from now (future ticks only); otherwise the next tick stays where it was, so
 * redefining a schedule neither skips nor repeats a tick. A paused schedule stays paused.
 */
export async function upsertSchedule(db: Database, definition: ScheduleDefinition, limits: ValidationLimits): Promise<Schedule> {
  const schedule = checkSchedule(definition, limits);
  return db.transaction(async (tx) => {
    const now = await databaseNow(tx);
    const next = schedule.cron.next(now);
    if (!next) {
      throw new ValidationError(
        'POSTBOX_ERR_BAD_SCHEDULE',
        `cron ${JSON.stringify(schedule.cron.cron)} has no tick after ${now.toISOString()} in ${schedule.cron.timeZone}: the schedule would never append a message.`,
        { field: 'cron' },
      );
    }
    const { rows } = await tx.query<ScheduleRow>(
      `with upserted as (
         insert into postbox.schedules as s (name, cron, time_zone, topic, type, key, payload, headers, missed, next_tick_at)
         values ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10::timestamptz)
         on conflict (name) do update
           set cron = excluded.cron, time_zone = excluded.time_zone, topic = excluded.topic, type = excluded.type, key = excluded.key,
               payload = excluded.payload, headers = excluded.headers, missed = excluded.missed,
               next_tick_at = case when s.cron = excluded.cron and s.time_zone = excluded.time_zone then s.next_tick_at else excluded.next_tick_at end,
               updated_at = now()
         returning *
       ),
       woken as (
         select postbox.wake_timekeeper(u.next_tick_at) from upserted u where u.status = 'active' and u.next_tick_at is not null
       )
       select ${scheduleColumns} from upserted cross join (select count(*) from woken) w`,
      [
        schedule.name,
        schedule.cron.cron,
        schedule.cron.timeZone,
        schedule.topic,
        schedule.type,
        schedule.key,
        schedule.payloadJson,
        JSON.stringify(schedule.headers),
        schedule.missed,
        next.toISOString(),
      ],
    );
    return toSchedule(rows[0] as ScheduleRow);
  });
}

export async function listSchedules(db: Executor): Promise<Schedule[]> {
  const { rows } = await db.query<ScheduleRow>(`select ${scheduleColumns} from postbox.schedules order by name`);
  return rows.map(toSchedule);
}

export async function getSchedule(db: Executor, name: string): Promise<Schedule> {
  const { rows } = await db.query<ScheduleRow>(`select ${scheduleColumns} from postbox.schedules where name = $1`, [name]);
  if (!rows[0]) throw scheduleNotFound(name);
  return toSchedule(rows[0]);
}

/** Stops appending ticks until resumed; ticks that pass meanwhile are never appended. */
export async function pauseSchedule(db: Executor, name: string): Promise<Schedule> {
  const { rows } = await db.query<ScheduleRow>(
    `update postbox.schedules set status = 'paused', updated_at = now() where name = $1 returning ${scheduleColumns}`,
    [name],
  );
  if (!rows[0]) throw scheduleNotFound(name);
  return toSchedule(rows[0]);
}

/** Appends ticks again from the first after now: the ticks of the pause are not caught up. */
export async function resumeSchedule(db: Database, name: string): Promise<Schedule> {
  return db.transaction(async (tx) => {
    const { rows: found } = await tx.query<{ cron: string; time_zone: string }>(
      'select cron, time_zone from postbox.schedules where name = $1 for update',
      [name],
    );
    const stored = found[0];
    if (!stored) throw scheduleNotFound(name);
    const next = cronTicks(stored.cron, stored.time_zone).next(await databaseNow(tx));
    const { rows } = await tx.query<ScheduleRow>(
      `with resumed as (
         update postbox.schedules set status = 'active', next_tick_at = $2::timestamptz, updated_at = now() where name = $1 returning *
       ),
       woken as (select postbox.wake_timekeeper(r.next_tick_at) from resumed r where r.next_tick_at is not null)
       select ${scheduleColumns} from resumed cross join (select count(*) from woken) w`,
      [name, next?.toISOString() ?? null],
    );
    return toSchedule(rows[0] as ScheduleRow);
  });
}

/** Deletes a schedule; false when none had the name. Code that defines it at start-up defines it again. */
export async function deleteSchedule(db: Executor, name: string): Promise<boolean> {
  const { rowCount } = await db.query('delete from postbox.schedules where name = $1', [name]);
  return rowCount > 0;
}
