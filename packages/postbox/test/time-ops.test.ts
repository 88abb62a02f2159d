import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readiness } from '../src/observability/health.js';
import { PostboxMetrics } from '../src/observability/metrics.js';
import { Postbox } from '../src/postbox.js';
import { cli, lines } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { waitFor } from './support/wait.js';

describe('operating delayed messages and schedules', () => {
  let database: TestDatabase;
  let postbox: Postbox;
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await createTestDatabase();
    postbox = await Postbox.create({ databaseUrl: database.url, timekeeper: 'off' });
    env = { DATABASE_URL: database.url };
  });
  afterAll(async () => {
    await postbox.close(2_000);
    await database.drop();
  });

  it('lists and cancels waiting messages from the command line', async () => {
    const later = new Date(Date.now() + 3_600_000);
    const [first, second] = await postbox.publish([
      { topic: 'reminders', type: 'remind', key: 'order-1', payload: { n: 1 }, deliverAt: later },
      { topic: 'reminders', type: 'remind', key: 'order-2', payload: { n: 2 }, deliverAt: new Date(later.getTime() + 60_000) },
    ]);
    const listed = await cli(['scheduled', 'list'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(lines(listed.stdout)[0]).toMatch(/^ID\s+TOPIC\s+TYPE\s+KEY\s+DUE AT\s+WRITTEN AT$/);
    expect(
      lines(listed.stdout)
        .slice(1)
        .map((line) => line.split(/\s+/)[0]),
    ).toEqual([first, second]);

    const json = await cli(['scheduled', 'list', '--key', 'order-2', '--json'], env);
    expect(lines(json.stdout).map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({ id: second, topic: 'reminders', key: 'order-2', payload: { n: 2 } }),
    ]);
    const before = await cli(['scheduled', 'list', '--due-before', new Date(later.getTime() + 30_000).toISOString(), '--json'], env);
    expect(lines(before.stdout).map((line) => JSON.parse(line).id)).toEqual([first]);

    const cancelled = await cli(['scheduled', 'cancel', first as string], env);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout.trim()).toBe(`Cancelled ${first}.`);
    const again = await cli(['scheduled', 'cancel', first as string], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/is waiting/);
    const garbage = await cli(['scheduled', 'cancel', 'nope'], env);
    expect(garbage.code).toBe(1);
    expect(garbage.stderr).toMatch(/POSTBOX_ERR_BAD_OPTION/);
    const badTime = await cli(['scheduled', 'list', '--due-before', 'tomorrow'], env);
    expect(badTime.code).toBe(2);
    expect((await postbox.listScheduled({ topic: 'reminders' })).map((m) => m.id)).toEqual([second]);
  });

  it('publishes a message that waits for its time from the command line', async () => {
    const publish = ['publish', '--topic', 'cli-later', '--type', 't', '--payload', '{"n":1}'];
    const delayed = await cli([...publish, '--delay', '2h'], env);
    expect(delayed.code, delayed.stderr).toBe(0);
    const at = await cli([...publish, '--deliver-at', '2031-01-01T09:00:00+01:00'], env);
    expect(at.code, at.stderr).toBe(0);
    const waiting = await postbox.listScheduled({ topic: 'cli-later' });
    expect(waiting.map((m) => m.id)).toEqual([delayed.stdout.trim(), at.stdout.trim()]);
    expect(waiting[0]?.dueAt.getTime()).toBeGreaterThan(Date.now() + 7_000_000);
    expect(waiting[1]?.dueAt.toISOString()).toBe('2031-01-01T08:00:00.000Z');
    const both = await cli([...publish, '--delay', '1m', '--deliver-at', '2031-01-01T09:00:00Z'], env);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/POSTBOX_ERR_BAD_DELIVERY_TIME/);
    expect((await cli([...publish, '--deliver-at', 'soon'], env)).code).toBe(2);
    expect((await cli([...publish, '--delay', '-5m'], env)).code).toBe(2);
  });

  it('adds, lists, pauses, resumes and deletes schedules from the command line', async () => {
    const added = await cli(
      [
        'schedules',
        'add',
        'nightly-report',
        '--cron',
        '0 2 * * *',
        '--time-zone',
        'Europe/Berlin',
        '--topic',
        'reports',
        '--type',
        'report.requested',
        '--payload',
        '{"kind":"nightly"}',
        '--header',
        'team=billing',
        '--missed',
        'last',
      ],
      env,
    );
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/^Schedule nightly-report \(0 2 \* \* \*, Europe\/Berlin\): next tick \d{4}-/);
    const stored = await postbox.schedules.get('nightly-report');
    expect(stored).toMatchObject({ missed: 'last', message: { payload: { kind: 'nightly' }, headers: { team: 'billing' } } });

    const listed = await cli(['schedules', 'list'], env);
    expect(lines(listed.stdout)[0]).toMatch(/^NAME\s+CRON\s+TIME ZONE\s+TOPIC\s+TYPE\s+MISSED\s+STATUS\s+NEXT TICK\s+LAST TICK$/);
    expect(lines(listed.stdout)[1]).toMatch(
      /^nightly-report\s+0 2 \* \* \*\s+Europe\/Berlin\s+reports\s+report\.requested\s+last\s+active/,
    );

    expect((await cli(['schedules', 'pause', 'nightly-report'], env)).stdout).toMatch(/: paused\.$/m);
    expect((await postbox.schedules.get('nightly-report')).status).toBe('paused');
    expect((await cli(['schedules', 'resume', 'nightly-report'], env)).stdout).toMatch(/next tick/);
    expect((await postbox.schedules.get('nightly-report')).status).toBe('active');

    const badCron = await cli(['schedules', 'add', 'broken', '--cron', '99 * * * *', '--topic', 't', '--type', 'x'], env);
    expect(badCron.code).toBe(1);
    expect(badCron.stderr).toMatch(/POSTBOX_ERR_BAD_SCHEDULE: cron "99 \* \* \* \*" is not a valid expression/);
    const badMissed = await cli(
      ['schedules', 'add', 'broken', '--cron', '* * * * *', '--topic', 't', '--type', 'x', '--missed', 'never'],
      env,
    );
    expect(badMissed.code).toBe(2);

    expect((await cli(['schedules', 'delete', 'nightly-report'], env)).stdout.trim()).toBe('Deleted schedule nightly-report.');
    const gone = await cli(['schedules', 'delete', 'nightly-report'], env);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/POSTBOX_ERR_SCHEDULE_NOT_FOUND/);
  });

  it('shows what waits in `postbox status`, in gauges, and in readiness once it is overdue with no timekeeper', async () => {
    await postbox.db.query('delete from postbox.scheduled_messages');
    await postbox.publish({ topic: 'overdue', type: 't', payload: 1, delayMs: 0 });
    // Written two minutes ago, as after a stretch with no process running the timekeeper.
    await postbox.db.query(`update postbox.scheduled_messages set due_at = now() - interval '2 minutes' where topic = 'overdue'`);

    const status = await cli(['status'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(
      /^Scheduled: 1 waiting \(1 due, overdue 1\d\ds, next due [^)]+\); schedules: 0 active, 0 paused; timekeeper: none running$/m,
    );
    const statusJson = JSON.parse((await cli(['status', '--json'], env)).stdout) as { time: { scheduledMessages: number } };
    expect(statusJson.time.scheduledMessages).toBe(1);

    const metrics = new PostboxMetrics(postbox.db);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^postbox_scheduled_messages 1$/m);
    expect(Number(/^postbox_scheduled_overdue_seconds (\S+)$/m.exec(text)?.[1])).toBeGreaterThan(110);

    const degraded = await readiness(postbox.db, { maxLagMessages: 100 });
    expect(degraded.status).toBe('degraded');
    expect(degraded.checks).toContainEqual({
      name: 'timekeeper',
      status: 'degraded',
      detail: expect.stringMatching(/overdue by 1\d\ds \(over 60s\): no process runs the timekeeper/),
    });

    // A timekeeper starts, moves it, and readiness is healthy again.
    await postbox.startTimekeeper();
    await waitFor(async () => (await postbox.timeStatus()).scheduledMessages === 0, 10_000, 'the overdue message moved');
    await postbox.stopTimekeeper();
    const healthy = await readiness(postbox.db, { maxLagMessages: 100 });
    expect(healthy.checks).toContainEqual({ name: 'timekeeper', status: 'healthy' });
  });
});
