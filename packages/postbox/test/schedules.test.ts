import type { DestinationStream } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaults } from '../src/config/defaults.js';
import { isPostboxError } from '../src/errors/postbox-error.js';
import { createLogger } from '../src/observability/logger.js';
import { Postbox } from '../src/postbox.js';
import type { Executor } from '../src/sql/database.js';
import { cronTicks } from '../src/time/cron.js';
import { dueTicks } from '../src/time/missed-ticks.js';
import { appendDueTicks } from '../src/time/schedule-ticks.js';
import { tickMessageId } from '../src/time/tick-id.js';
import { backends, type TestPostbox } from './support/backends.js';
import { exited, spawnTs } from './support/child.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { delay, waitFor } from './support/wait.js';

const iso = (text: string) => new Date(text).toISOString();

async function expectCode(promise: Promise<unknown>, code: string, details?: Record<string, unknown>): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(isPostboxError(error), String(error)).toBe(true);
  expect((error as { code: string }).code).toBe(code);
  if (details) expect((error as { details: unknown }).details).toMatchObject(details);
}

interface TickRow {
  message_id: string;
  scheduled_for: string;
  copies: number;
}

/** The tick messages of a schedule in the log, one row per tick time, with how many messages each has. */
async function ticksOf(db: Executor, schedule: string): Promise<TickRow[]> {
  const { rows } = await db.query<TickRow>(
    `select min(message_id::text) as message_id, headers ->> 'scheduledFor' as scheduled_for, count(*)::int as copies
     from postbox.messages where headers ->> 'schedule' = $1
     group by headers ->> 'scheduledFor' order by headers ->> 'scheduledFor'`,
    [schedule],
  );
  return rows;
}

describe('cron ticks in time zones (pure computation)', () => {
  it('runs a fixed-time job once when the clock falls back, and right after the gap when it springs forward', () => {
    const berlin = cronTicks('30 2 * * *', 'Europe/Berlin');
    // 29 March 2026: 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist: it runs at 03:00 CEST.
    expect(berlin.next(new Date('2026-03-28T12:00:00Z'))?.toISOString()).toBe(iso('2026-03-29T01:00:00Z'));
    // 25 October 2026: 03:00 CEST falls back to 02:00 CET, so 02:30 happens twice: it runs at the first.
    expect(berlin.next(new Date('2026-10-24T12:00:00Z'))?.toISOString()).toBe(iso('2026-10-25T00:30:00Z'));
    expect(berlin.next(new Date('2026-10-25T00:30:00Z'))?.toISOString()).toBe(iso('2026-10-26T01:30:00Z'));
    // The same wall-clock time in New York, whose clocks change on other days.
    const newYork = cronTicks('30 2 * * *', 'America/New_York');
    expect(newYork.next(new Date('2026-03-07T12:00:00Z'))?.toISOString()).toBe(iso('2026-03-08T07:00:00Z'));
    expect(newYork.next(new Date('2026-03-08T12:00:00Z'))?.toISOString()).toBe(iso('2026-03-09T06:30:00Z'));
  });

  it('runs an interval job at both passes of a repeated hour, and skips the times a gap removes', () => {
    const everyHalfHour = cronTicks('*/30 * * * *', 'Europe/Berlin');
    const ticks = (from: string, count: number) => {
      const found: string[] = [];
      let at: Date | null = new Date(from);
      for (let i = 0; i < count && at; i++) {
        at = everyHalfHour.next(at);
        if (at) found.push(at.toISOString());
      }
      return found;
    };
    expect(ticks('2026-10-24T23:45:00Z', 6)).toEqual(
      [
        '2026-10-25T00:00:00Z',
        '2026-10-25T00:30:00Z',
        '2026-10-25T01:00:00Z',
        '2026-10-25T01:30:00Z',
        '2026-10-25T02:00:00Z',
        '2026-10-25T02:30:00Z',
      ].map(iso),
    );
    expect(ticks('2026-03-29T00:15:00Z', 3)).toEqual(['2026-03-29T00:30:00Z', '2026-03-29T01:00:00Z', '2026-03-29T01:30:00Z'].map(iso));
    // UTC has no gap: every half hour, 48 a day.
    expect(cronTicks('*/30 * * * *', 'UTC').latest(48, new Date('2026-03-29T23:59:00Z')).at(-1)?.toISOString()).toBe(
      iso('2026-03-29T00:00:00Z'),
    );
  });

  it('chooses the ticks due by the missed policy, and catches up a late takeover within the grace', () => {
    const everyMinute = cronTicks('* * * * *', 'UTC');
    const first = new Date('2026-05-01T10:00:00Z');
    const rules = { graceMs: 60_000, maxTicks: 20 };
    // 105 s late, within a grace of two minutes: not missed; both due ticks are appended whatever the policy.
    const late = dueTicks(everyMinute, first, new Date('2026-05-01T10:01:45Z'), { ...rules, graceMs: 120_000, policy: 'skip' });
    expect(late).toMatchObject({ missed: false, capped: false });
    expect(late.ticks.map((t) => t.toISOString())).toEqual([iso('2026-05-01T10:00:00Z'), iso('2026-05-01T10:01:00Z')]);
    expect(late.next?.toISOString()).toBe(iso('2026-05-01T10:02:00Z'));
    // Ten minutes with nothing running.
    const now = new Date('2026-05-01T10:10:30Z');
    const skip = dueTicks(everyMinute, first, now, { ...rules, policy: 'skip' });
    expect(skip).toMatchObject({ ticks: [], missed: true, capped: false });
    expect(skip.next?.toISOString()).toBe(iso('2026-05-01T10:11:00Z'));
    const last = dueTicks(everyMinute, first, now, { ...rules, policy: 'last' });
    expect(last.ticks.map((t) => t.toISOString())).toEqual([iso('2026-05-01T10:10:00Z')]);
    const all = dueTicks(everyMinute, first, now, { ...rules, policy: 'all' });
    expect(all.ticks).toHaveLength(11);
    expect(all.ticks[0]?.toISOString()).toBe(iso('2026-05-01T10:00:00Z'));
    const capped = dueTicks(everyMinute, first, now, { ...rules, maxTicks: 4, policy: 'all' });
    expect(capped).toMatchObject({ missed: true, capped: true });
    expect(capped.ticks.map((t) => t.toISOString())).toEqual(
      ['2026-05-01T10:07:00Z', '2026-05-01T10:08:00Z', '2026-05-01T10:09:00Z', '2026-05-01T10:10:00Z'].map(iso),
    );
  });

  it('gives a tick the same id wherever it is computed, and another tick or schedule another id', () => {
    const tick = new Date('2026-05-01T10:00:00Z');
    expect(tickMessageId('nightly', tick)).toBe(tickMessageId('nightly', new Date(tick.getTime())));
    expect(tickMessageId('nightly', tick)).not.toBe(tickMessageId('nightly', new Date(tick.getTime() + 1_000)));
    expect(tickMessageId('nightly', tick)).not.toBe(tickMessageId('hourly', tick));
  });

  it('refuses an invalid expression or time zone, naming the field', () => {
    for (const cron of ['61 * * * *', 'every day', '* * *', '2030-01-01T00:00:00', '']) {
      expect(() => cronTicks(cron, 'UTC'), cron).toThrowError(
        expect.objectContaining({ code: 'POSTBOX_ERR_BAD_SCHEDULE', details: { field: 'cron' } }),
      );
    }
    for (const zone of ['Mars/Olympus_Mons', '', 'Europe/Berlinn']) {
      expect(() => cronTicks('* * * * *', zone), zone).toThrowError(
        expect.objectContaining({ code: 'POSTBOX_ERR_BAD_SCHEDULE', details: { field: 'timeZone' } }),
      );
    }
    expect(cronTicks('@hourly', 'Asia/Kolkata').next(new Date('2026-01-01T00:10:00Z'))?.toISOString()).toBe(iso('2026-01-01T00:30:00Z'));
  });
});

describe.each(backends)('schedules on $name', (backend) => {
  let test: TestPostbox;
  let postbox: Postbox;

  beforeAll(async () => {
    test = await backend.open({ timekeeper: 'on', timekeeperOptions: { pollIntervalMs: 200 } });
    postbox = test.postbox;
  });
  afterAll(async () => {
    await test.cleanup();
  });

  it("appends one message per tick, with the tick's id and time, until paused; resumes from the next tick; stops when deleted", async () => {
    const defined = await postbox.schedule({
      name: 'pulse',
      cron: '* * * * * *',
      message: { topic: 'pulses', type: 'pulse', key: 'p', payload: { beat: true }, headers: { origin: 'test' }, correlationId: 'c-1' },
      missed: 'all',
    });
    expect(defined).toMatchObject({ name: 'pulse', timeZone: 'UTC', status: 'active', missed: 'all', lastTickAt: null });
    await waitFor(async () => (await ticksOf(postbox.db, 'pulse')).length >= 2, 10_000, 'two ticks');
    const { rows } = await postbox.db.query<{
      message_id: string;
      type: string;
      key: string;
      payload: unknown;
      headers: Record<string, unknown>;
    }>(`select message_id, type, key, payload, headers from postbox.messages where topic = 'pulses' order by global_position limit 1`);
    const first = rows[0];
    expect(first).toMatchObject({ type: 'pulse', key: 'p', payload: { beat: true } });
    expect(first?.headers).toMatchObject({ schedule: 'pulse', origin: 'test', correlationId: 'c-1', schemaVersion: 1 });
    const scheduledFor = new Date(first?.headers.scheduledFor as string);
    expect(scheduledFor.getUTCMilliseconds()).toBe(0);
    expect(first?.message_id).toBe(tickMessageId('pulse', scheduledFor));

    const paused = await postbox.schedules.pause('pulse');
    expect(paused.status).toBe('paused');
    const pausedCount = (await ticksOf(postbox.db, 'pulse')).length;
    await delay(2_500);
    expect((await ticksOf(postbox.db, 'pulse')).length).toBe(pausedCount);
    const resumed = await postbox.schedules.resume('pulse');
    expect(resumed.status).toBe('active');
    await waitFor(async () => (await ticksOf(postbox.db, 'pulse')).length >= pausedCount + 2, 10_000, 'ticks after resuming');
    // The ticks of the pause are not caught up: the first after it is the first after resuming.
    const after = (await ticksOf(postbox.db, 'pulse')).slice(pausedCount);
    expect(new Date(after[0]?.scheduled_for as string).getTime()).toBeGreaterThan((resumed.nextTickAt as Date).getTime() - 1);
    expect((await ticksOf(postbox.db, 'pulse')).every((tick) => tick.copies === 1)).toBe(true);

    expect(await postbox.schedules.delete('pulse')).toBe(true);
    const deletedCount = (await ticksOf(postbox.db, 'pulse')).length;
    await delay(1_500);
    expect((await ticksOf(postbox.db, 'pulse')).length).toBe(deletedCount);
    await expectCode(postbox.schedules.get('pulse'), 'POSTBOX_ERR_SCHEDULE_NOT_FOUND');
    await expectCode(postbox.schedules.pause('pulse'), 'POSTBOX_ERR_SCHEDULE_NOT_FOUND');
    await expectCode(postbox.schedules.resume('pulse'), 'POSTBOX_ERR_SCHEDULE_NOT_FOUND');
    expect(await postbox.schedules.delete('pulse')).toBe(false);
  });

  it('upserts: the same expression keeps its next tick, another starts over from now, and a paused schedule stays paused', async () => {
    const message = { topic: 'reports', type: 'report.due', payload: { v: 1 } };
    const first = await postbox.schedule({ name: 'morning', cron: '0 9 * * *', timeZone: 'Europe/Berlin', message });
    expect(first.nextTickAt?.getUTCHours()).toBeOneOf([7, 8]);
    const again = await postbox.schedule({
      name: 'morning',
      cron: '0 9 * * *',
      timeZone: 'Europe/Berlin',
      message: { ...message, payload: { v: 2 } },
    });
    expect(again.nextTickAt).toEqual(first.nextTickAt);
    expect(again.message.payload).toEqual({ v: 2 });
    await postbox.schedules.pause('morning');
    const stillPaused = await postbox.schedule({ name: 'morning', cron: '0 9 * * *', timeZone: 'Europe/Berlin', message, missed: 'last' });
    expect(stillPaused).toMatchObject({ status: 'paused', missed: 'last' });
    const moved = await postbox.schedule({ name: 'morning', cron: '0 10 * * *', timeZone: 'Asia/Tokyo', message });
    expect(moved.nextTickAt?.getUTCHours()).toBe(1);
    expect((await postbox.schedules.list()).map((s) => s.name)).toContain('morning');
    await postbox.schedules.delete('morning');
  });

  it('refuses an invalid schedule with a typed error that names the field, and stores nothing', async () => {
    const message = { topic: 't', type: 'x', payload: 1 };
    await expectCode(postbox.schedule({ name: 'bad', cron: '0 25 * * *', message }), 'POSTBOX_ERR_BAD_SCHEDULE', { field: 'cron' });
    await expectCode(postbox.schedule({ name: 'bad', cron: '0 0 30 2 *', message }), 'POSTBOX_ERR_BAD_SCHEDULE', { field: 'cron' });
    await expectCode(postbox.schedule({ name: 'bad', cron: '* * * * *', timeZone: 'Nowhere/Land', message }), 'POSTBOX_ERR_BAD_SCHEDULE', {
      field: 'timeZone',
    });
    await expectCode(postbox.schedule({ name: 'bad', cron: '* * * * *', message, missed: 'some' as 'all' }), 'POSTBOX_ERR_BAD_SCHEDULE', {
      field: 'missed',
    });
    await expectCode(postbox.schedule({ name: ' ', cron: '* * * * *', message }), 'POSTBOX_ERR_BAD_NAME', { field: 'name' });
    await expectCode(postbox.schedule({ name: 'bad', cron: '* * * * *', message: { ...message, topic: '' } }), 'POSTBOX_ERR_EMPTY_TOPIC');
    await expectCode(
      postbox.schedule({ name: 'bad', cron: '* * * * *', message: { ...message, headers: { scheduledFor: 'x' } } }),
      'POSTBOX_ERR_BAD_HEADER',
    );
    await expectCode(
      postbox.schedule({ name: 'bad', cron: '* * * * *', message: { ...message, id: crypto.randomUUID() } as never }),
      'POSTBOX_ERR_BAD_OPTION',
    );
    const tooMany = Object.fromEntries(Array.from({ length: defaults.maxHeaderCount - 1 }, (_, i) => [`h${i}`, 'v']));
    await expectCode(
      postbox.schedule({ name: 'bad', cron: '* * * * *', message: { ...message, headers: tooMany } }),
      'POSTBOX_ERR_BAD_HEADER',
    );
    await expectCode(
      postbox.schedule({ name: 'bad', cron: '* * * * *', message: { ...message, payload: 'x'.repeat(postbox.payloadLimitBytes) } }),
      'POSTBOX_ERR_PAYLOAD_TOO_LARGE',
    );
    expect((await postbox.schedules.list()).map((s) => s.name)).not.toContain('bad');
  });
});

describe('schedules across processes and restarts (PostgreSQL)', () => {
  let database: TestDatabase;
  let postbox: Postbox;

  beforeAll(async () => {
    database = await createTestDatabase();
    postbox = await Postbox.create({ databaseUrl: database.url, timekeeper: 'off' });
  });
  afterAll(async () => {
    await postbox.close(2_000);
    await database.drop();
  });

  it('appends each tick once while two processes run the timekeeper, across a kill -9 of the one that holds it', async () => {
    await postbox.schedule({ name: 'every-second', cron: '* * * * * *', message: { topic: 'seconds', type: 'tick' }, missed: 'all' });
    const env = { DATABASE_URL: database.url, LEASE_TTL_MS: '1500', POLL_INTERVAL_MS: '300' };
    const children = {
      one: spawnTs('fixtures/timekeeper-process.ts', { ...env, OWNER: 'one' }),
      two: spawnTs('fixtures/timekeeper-process.ts', { ...env, OWNER: 'two' }),
    };
    try {
      await waitFor(async () => (await ticksOf(postbox.db, 'every-second')).length >= 3, 20_000, 'three ticks');
      const holder = (await postbox.timeStatus()).timekeeper?.owner as 'one' | 'two';
      expect(['one', 'two']).toContain(holder);
      children[holder].kill('SIGKILL');
      await exited(children[holder]);
      const survivor = holder === 'one' ? 'two' : 'one';
      await waitFor(async () => (await postbox.timeStatus()).timekeeper?.owner === survivor, 10_000, 'the survivor to take over');
      const atTakeover = (await ticksOf(postbox.db, 'every-second')).length;
      await waitFor(async () => (await ticksOf(postbox.db, 'every-second')).length >= atTakeover + 3, 10_000, 'ticks after the takeover');
      await postbox.schedules.pause('every-second');
    } finally {
      for (const child of Object.values(children)) child.kill('SIGKILL');
      await Promise.all(Object.values(children).map(exited));
    }
    const ticks = await ticksOf(postbox.db, 'every-second');
    expect(ticks.filter((tick) => tick.copies !== 1)).toEqual([]);
    // No tick is missing either: the takeover came within the grace, so the ticks of the gap were caught up.
    const times = ticks.map((tick) => new Date(tick.scheduled_for).getTime());
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(1_000);
    expect(ticks.every((tick) => tick.message_id === tickMessageId('every-second', new Date(tick.scheduled_for)))).toBe(true);
  });

  it('never appends a tick twice, even when two holders race over the same ticks', async () => {
    await postbox.schedule({ name: 'raced', cron: '* * * * * *', message: { topic: 'raced', type: 'tick' }, missed: 'all' });
    await postbox.schedules.pause('raced');
    const rewind = () =>
      postbox.db.query(
        `update postbox.schedules set status = 'active', next_tick_at = date_trunc('second', now()) - interval '5 seconds' where name = 'raced'`,
      );
    await rewind();
    const options = { batchSize: 10, graceMs: 60_000, maxCatchUpTicks: 100, logger: createLogger({ level: 'silent' }) };
    const other = await Postbox.create({ databaseUrl: database.url, timekeeper: 'off' });
    try {
      // Two at the same time: one waits for the other's lock on the schedule, then finds nothing due.
      const [a, b] = await Promise.all([
        postbox.transaction((tx) => appendDueTicks(tx, options)),
        other.transaction((tx) => appendDueTicks(tx, options)),
      ]);
      expect(a.appended + b.appended).toBeGreaterThanOrEqual(6);
      // A holder that read the schedule before the other moved it on (a lease that ran out mid-round) offers the same ticks again.
      await rewind();
      const replay = await other.transaction((tx) => appendDueTicks(tx, options));
      expect(replay.schedules).toBe(1);
      expect(replay.appended).toBeLessThanOrEqual(1);
    } finally {
      await other.close();
    }
    const ticks = await ticksOf(postbox.db, 'raced');
    expect(ticks.length).toBeGreaterThanOrEqual(6);
    expect(ticks.filter((tick) => tick.copies !== 1)).toEqual([]);
  });

  it("after a restart follows each schedule's missed policy: none, the latest, or each missed tick up to the cap", async () => {
    // Ten minutes with no timekeeper, for schedules of one tick a minute; away from a minute's turn.
    const second = new Date().getUTCSeconds();
    if (second >= 45) await delay((61 - second) * 1_000);
    const message = { topic: 'missed', type: 'tick' };
    for (const [name, missed] of [
      ['skip-missed', 'skip'],
      ['last-missed', 'last'],
      ['all-missed', 'all'],
      ['all-capped', 'all'],
    ] as const) {
      await postbox.schedule({ name, cron: '* * * * *', message, missed });
    }
    const { rows } = await postbox.db.query<{ minute: number }>(
      `update postbox.schedules
       set next_tick_at = date_trunc('minute', now()) - case name when 'all-capped' then interval '30 minutes' else interval '10 minutes' end
       where topic = 'missed'
       returning (extract(epoch from date_trunc('minute', now())) * 1000)::float8 as minute`,
    );
    const minute = (rows[0] as { minute: number }).minute;
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => lines.push(line) } as DestinationStream });
    const restarted = await Postbox.create({
      databaseUrl: database.url,
      logger,
      timekeeper: 'on',
      timekeeperOptions: { maxCatchUpTicks: 20, pollIntervalMs: 200, standbyIntervalMs: 500 },
    });
    try {
      await waitFor(
        async () =>
          (await postbox.schedules.list())
            .filter((s) => s.message.topic === 'missed')
            .every((s) => (s.nextTickAt as Date).getTime() > minute),
        10_000,
        'every schedule moved on',
      );
    } finally {
      await restarted.close();
    }
    const times = async (name: string) => (await ticksOf(postbox.db, name)).map((tick) => new Date(tick.scheduled_for).getTime());
    const minutes = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => minute + (from + i) * 60_000);
    expect(await times('skip-missed')).toEqual([]);
    expect(await times('last-missed')).toEqual([minute]);
    expect(await times('all-missed')).toEqual(minutes(-10, 0));
    expect(await times('all-capped')).toEqual(minutes(-19, 0));
    const warnings = lines
      .map((line) => JSON.parse(line) as { level: number; msg: string; schedule?: string })
      .filter((entry) => entry.level === 40);
    expect(warnings).toEqual([expect.objectContaining({ schedule: 'all-capped', msg: expect.stringContaining('more than 20 ticks') })]);
    // Each moved on to its next future tick.
    for (const schedule of (await postbox.schedules.list()).filter((s) => s.message.topic === 'missed')) {
      expect(schedule.nextTickAt?.getTime()).toBe(minute + 60_000);
    }
  });
});
