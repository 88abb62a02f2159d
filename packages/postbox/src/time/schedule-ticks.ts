import { type AppendRow, appendMessagesOnce } from '../log/append.js';
import type { MessageHeaders } from '../log/message.js';
import type { Logger } from '../observability/logger.js';
import type { Executor } from '../sql/database.js';
import { cronTicks } from './cron.js';
import { type DueTickRules, dueTicks, type MissedPolicy } from './missed-ticks.js';
import { tickMessageId } from './tick-id.js';

export interface TickRound {
  /** Schedules found due (at most the batch size). */
  schedules: number;
  /** Tick messages appended to the log. */
  appended: number;
}

interface DueScheduleRow {
  name: string;
  cron: string;
  time_zone: string;
  topic: string;
  type: string;
  key: string | null;
  payload: string;
  headers: MessageHeaders;
  missed: MissedPolicy;
  next_tick_at: number;
  now: number;
}

export interface TickOptions {
  batchSize: number;
  graceMs: number;
  maxCatchUpTicks: number;
  logger: Logger;
}

/** The message of one tick: the schedule's message with the tick's id and the tick headers. */
function tickMessage(row: DueScheduleRow, tick: Date): AppendRow {
  const headers: MessageHeaders = { ...row.headers, schedule: row.name, scheduledFor: tick.toISOString() };
  return {
    id: tickMessageId(row.name, tick),
    topic: row.topic,
    type: row.type,
    key: row.key,
    payloadJson: row.payload,
    headersJson: JSON.stringify(headers),
  };
}

/**
 * Appends the due ticks of up to batchSize active schedules, in the caller's transaction (fenced by
 * the timekeeper's lease), and moves each schedule on to its next tick. Times are the database's.
 * Ticks go through the log's write path with their deterministic ids, and an id the log holds
 * already is left out: a tick is in the log once, whoever offers it how often.
 */
export async function appendDueTicks(tx: Executor, options: TickOptions): Promise<TickRound> {
  const { rows } = await tx.query<DueScheduleRow>(
    `select name, cron, time_zone, topic, type, key, payload::text as payload, headers, missed,
            (extract(epoch from next_tick_at) * 1000)::float8 as next_tick_at, (extract(epoch from now()) * 1000)::float8 as now
     from postbox.schedules
     where status = 'active' and next_tick_at <= now()
     order by next_tick_at, name
     limit $1
     for update`,
    [options.batchSize],
  );
  const messages: { tick: Date; row: AppendRow }[] = [];
  const advanced: { name: string; next: string | null; last: string | null }[] = [];
  const broken: string[] = [];
  for (const row of rows) {
    const now = new Date(row.now);
    let cron: ReturnType<typeof cronTicks>;
    try {
      cron = cronTicks(row.cron, row.time_zone);
    } catch (error) {
      // Stored by an older version or under another time zone database: paused, visibly, rather than retried forever.
      options.logger.error({ err: error, schedule: row.name }, 'schedule paused: its cron expression or time zone no longer compiles');
      broken.push(row.name);
      continue;
    }
    const rules: DueTickRules = { policy: row.missed, graceMs: options.graceMs, maxTicks: options.maxCatchUpTicks };
    const due = dueTicks(cron, new Date(row.next_tick_at), now, rules);
    if (due.missed) {
      const context = {
        schedule: row.name,
        policy: row.missed,
        from: new Date(row.next_tick_at).toISOString(),
        appended: due.ticks.length,
      };
      if (due.capped) {
        options.logger.warn(context, `schedule missed more than ${rules.maxTicks} ticks: only the latest ${rules.maxTicks} are appended`);
      } else {
        options.logger.info(context, 'schedule missed ticks while no timekeeper ran; its missed policy chose which to append');
      }
    }
    for (const tick of due.ticks) messages.push({ tick, row: tickMessage(row, tick) });
    advanced.push({ name: row.name, next: due.next?.toISOString() ?? null, last: due.ticks.at(-1)?.toISOString() ?? null });
  }
  messages.sort((a, b) => a.tick.getTime() - b.tick.getTime());
  const appended = await appendMessagesOnce(
    tx,
    messages.map((message) => message.row),
  );
  if (advanced.length > 0) {
    await tx.query(
      `update postbox.schedules s
       set next_tick_at = a.next, last_tick_at = coalesce(a.last, s.last_tick_at), updated_at = now()
       from unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) as a(name, next, last)
       where s.name = a.name`,
      [advanced.map((a) => a.name), advanced.map((a) => a.next), advanced.map((a) => a.last)],
    );
  }
  if (broken.length > 0) {
    await tx.query(`update postbox.schedules set status = 'paused', updated_at = now() where name = any($1::text[])`, [broken]);
  }
  return { schedules: rows.length, appended };
}
