import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Consumer } from '../src/consumers/consumer.js';
import { registerConsole } from '../src/ops/console/register-console.js';
import { Fastify } from '../src/ops/fastify.js';
import { Postbox } from '../src/postbox.js';
import { Router } from '../src/router/router.js';
import { type HeldTransaction, holdTransaction } from './support/held-transaction.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { delay, waitFor } from './support/wait.js';

const chromiumPath = '/usr/bin/chromium';
const resultsDir = fileURLToPath(new URL('../test-results/', import.meta.url));
const token = 'browser-console-token';
const catchUpGroup = 'browser-catch-up';
const backlog = 300;

function screenshotPath(name: string): string {
  mkdirSync(resultsDir, { recursive: true });
  const path = join(resultsDir, name);
  rmSync(path, { force: true });
  return path;
}

/** The whole page from its top; with a dialog open, what the window shows. */
async function screenshot(page: Page, name: string, what: 'page' | 'dialog' = 'page'): Promise<void> {
  const path = screenshotPath(name);
  if (what === 'page') await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path, fullPage: what === 'page' });
  expect(statSync(path).size).toBeGreaterThan(10_000);
}

const noMembers = (page: Page) =>
  page.locator(`[data-testid="ops-group-detail"][data-group="${catchUpGroup}"] [data-testid="ops-members-empty"]`);

const lastMessage = (page: Page, kind: 'error' | 'info') =>
  page
    .locator(`[data-testid="message"][data-kind="${kind}"]`)
    .getByTestId('message-text')
    .evaluateAll((texts) => texts.at(-1)?.textContent ?? null);

describe('the operations console in Chromium', () => {
  let database: TestDatabase;
  let postbox: Postbox;
  let router: Router;
  let app: FastifyInstance;
  let browser: Browser | undefined;
  let page: Page;
  let baseUrl: string;
  const consumers: Consumer[] = [];
  const failing = { on: true };
  const handled: string[] = [];
  const parcelsFail = { on: true };
  const parcels: string[] = [];
  const pageErrors: string[] = [];
  const outsideRequests: string[] = [];

  /** A consumer of the catch-up group that takes its time, so that the page sees the lag fall step by step. */
  function slowConsumer(): Consumer {
    const consumer = postbox.consumer({
      group: catchUpGroup,
      topics: ['browser-backlog'],
      batchSize: 10,
      pollIntervalMs: 50,
      handleMessage: async () => {
        await delay(15);
      },
    });
    consumers.push(consumer);
    return consumer;
  }

  beforeAll(async () => {
    if (!existsSync(chromiumPath)) {
      throw new Error(`Chromium is not installed at ${chromiumPath}; the console's browser test needs it: apt-get install chromium`);
    }
    database = await createTestDatabase();
    postbox = await Postbox.create({ databaseUrl: database.url, consumerDefaults: { pollIntervalMs: 50 } });
    router = new Router(postbox, { redeliveryIntervalMs: 100 })
      .addHandler({
        name: 'browser-orders',
        topics: ['browser-orders'],
        retry: { maxAttempts: 1 },
        handle: async (message) => {
          const { id } = message.payload as { id: string };
          if (failing.on) throw new Error(`the warehouse refused order ${id}`);
          handled.push(id);
        },
      })
      .addHandler({
        name: 'browser-parcels',
        topics: ['browser-parcels'],
        retry: { maxAttempts: 1 },
        // Attempted again from parking only when released from the page.
        park: { initialDelayMs: 600_000, maxDelayMs: 600_000, jitter: 0, maxAttempts: null, maxAgeMs: 3_600_000 },
        handle: async (message) => {
          const { seq } = message.payload as { seq: number };
          if (parcelsFail.on) throw new Error(`the carrier is closed for ${message.key}`);
          parcels.push(`${message.key}:${seq}`);
        },
      });
    await router.start();
    app = Fastify({ logger: false });
    await registerConsole(app, { postbox, token, host: '127.0.0.1', refreshMs: 500, sampler: { intervalMs: 500, windowMs: 60_000 } });
    baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('request', (request) => {
      if (!request.url().startsWith(baseUrl) && !request.url().startsWith('data:')) outsideRequests.push(request.url());
    });
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    for (const consumer of consumers) await consumer.stop(2_000);
    await router?.stop(2_000);
    await postbox?.close(2_000);
    await database?.drop();
  });

  it("shows a group's lag go down as its consumer catches up, with the charts drawn", async () => {
    const first = slowConsumer();
    await first.start();
    await first.stop();
    await postbox.publish(
      Array.from({ length: backlog }, (_, i) => ({ topic: 'browser-backlog', type: 'item', key: `k${i % 7}`, payload: i })),
    );

    await page.goto(`${baseUrl}/ops`);
    expect(new URL(page.url()).pathname).toBe('/ops/');
    await expect(page.title()).resolves.toBe('Postbox console');
    await expect(page.getByTestId('console-database').textContent()).resolves.toBe(
      `postgres postgres://postgres@127.0.0.1:5432/${database.name}`,
    );
    const row = page.locator(`[data-testid="ops-group-row"][data-group="${catchUpGroup}"]`);
    const lag = row.getByTestId('ops-group-lag');
    await expect.poll(() => lag.textContent()).toBe(String(backlog));
    await expect(noMembers(page).textContent()).resolves.toBe('No process runs this group.');

    await slowConsumer().start();
    const seen: number[] = [];
    await waitFor(
      async () => {
        const value = Number(await lag.textContent());
        if (seen.at(-1) !== value) seen.push(value);
        return value === 0;
      },
      30_000,
      'the lag to reach 0',
    );
    expect(seen[0]).toBe(backlog);
    expect(seen.at(-1)).toBe(0);
    // The page saw it fall step by step, never rising.
    expect(
      seen.some((value) => value > 0 && value < backlog),
      JSON.stringify(seen),
    ).toBe(true);
    expect(seen).toEqual([...seen].sort((a, b) => b - a));

    const chartRow = page.locator(`[data-testid="chart-group-row"][data-group="${catchUpGroup}"]`);
    await expect
      .poll(async () => Number(await chartRow.getByTestId('sparkline-lag').getAttribute('data-points')))
      .toBeGreaterThanOrEqual(3);
    await expect.poll(async () => Number(await chartRow.getByTestId('sparkline-lag').getAttribute('data-max'))).toBeGreaterThan(0);
    await expect.poll(async () => Number(await chartRow.getByTestId('sparkline-lag').getAttribute('data-last'))).toBe(0);
    await expect.poll(async () => Number(await chartRow.getByTestId('sparkline-handled').getAttribute('data-max'))).toBeGreaterThan(0);
    expect(await chartRow.locator('polyline').count()).toBeGreaterThan(0);
    await expect.poll(async () => Number(await page.getByTestId('sparkline-log').getAttribute('data-max'))).toBeGreaterThan(0);
    await screenshot(page, 'console-groups-and-charts.png');
  });

  it('shows a dead letter whole, asks for the token, retries it and sees it handled', async () => {
    await postbox.publish({ topic: 'browser-orders', type: 'order', key: 'order-7', payload: { id: 'order-7' } });
    const letter = page.locator('[data-testid="dead-letter-row"][data-status="pending"]');
    await letter.waitFor();
    await expect(letter.getByTestId('dead-letter-error').textContent()).resolves.toBe('the warehouse refused order order-7');
    await expect(page.getByTestId('dead-letter-badge').textContent()).resolves.toBe('1');
    const id = (await letter.getAttribute('data-id')) as string;

    await letter.getByTestId('dead-letter-view').click();
    const dialog = page.getByTestId('dead-letter-dialog');
    await dialog.waitFor();
    expect(JSON.parse((await dialog.getByTestId('dead-letter-payload').textContent()) ?? '')).toEqual({ id: 'order-7' });
    await expect(dialog.getByTestId('dead-letter-stack').textContent()).resolves.toMatch(
      /^Error: the warehouse refused order order-7\n\s+at /,
    );
    await expect(dialog.getByTestId('dead-letter-group').textContent()).resolves.toBe('browser-orders');
    await screenshot(page, 'console-dead-letter.png', 'dialog');
    await dialog.getByTestId('dead-letter-dialog-close').click();
    await dialog.waitFor({ state: 'detached' });

    failing.on = false;
    await letter.getByTestId('dead-letter-retry').click();
    await page.getByTestId('token-panel').waitFor();
    await expect(page.getByTestId('token-reason').textContent()).resolves.toContain('Authorization: Bearer');
    await expect.poll(() => lastMessage(page, 'error')).toContain('POSTBOX_ERR_UNAUTHORIZED');
    expect((await postbox.deadLetters.get(id)).status).toBe('pending');
    await page.getByTestId('token-input').fill(token);
    await page.getByTestId('token-save').click();
    await expect(page.getByTestId('token-toggle').textContent()).resolves.toContain('✓');

    await page.locator(`[data-testid="dead-letter-row"][data-id="${id}"]`).getByTestId('dead-letter-retry').click();
    await expect.poll(() => lastMessage(page, 'info')).toBe(`Dead letter ${id} sent back to its group`);
    await page.getByTestId('dead-letters-empty').waitFor();
    await page.getByTestId('dead-letter-filter-status').selectOption('retried');
    await page.locator(`[data-testid="dead-letter-row"][data-id="${id}"][data-status="retried"]`).waitFor();
    expect(handled).toEqual(['order-7']);
    await expect.poll(() => page.getByTestId('dead-letter-badge').isHidden()).toBe(true);
    await page.getByTestId('dead-letter-filter-status').selectOption('open');
  });

  it('shows a parked key, and releases it so that its messages are handled in order', async () => {
    await expect(page.getByTestId('parked-empty').textContent()).resolves.toBe('Nothing parked. No key is waiting.');
    expect(await page.getByTestId('parked-badge').isHidden()).toBe(true);
    await postbox.publish([0, 1].map((seq) => ({ topic: 'browser-parcels', type: 'parcel', key: 'parcel-9', payload: { seq } })));
    const rows = page.locator('[data-testid="parked-row"][data-key="parcel-9"]');
    await expect.poll(() => rows.evaluateAll((all) => all.map((row) => row.getAttribute('data-status')))).toEqual(['waiting', 'follower']);
    const first = rows.first();
    await expect(first.getByTestId('parked-error').textContent()).resolves.toBe('the carrier is closed for parcel-9');
    await expect(first.getByTestId('parked-state').textContent()).resolves.toBe('waiting');
    await expect(rows.nth(1).getByTestId('parked-state').textContent()).resolves.toBe('behind');
    await expect(page.getByTestId('parked-badge').textContent()).resolves.toBe('2');
    await expect(page.locator('[data-testid="parked-group-total"][data-group="browser-parcels"]').textContent()).resolves.toMatch(
      /^browser-parcels: 2 parked \(1 waiting, 1 behind, 0 held\), oldest /,
    );
    await screenshot(page, 'console-parked.png');

    parcelsFail.on = false;
    const id = (await first.getAttribute('data-id')) as string;
    // The token was saved for this tab with the dead letter's retry.
    await rows.nth(1).getByTestId('parked-release').click();
    await expect
      .poll(() => lastMessage(page, 'info'))
      .toBe(`Released key "parcel-9" of group browser-parcels: parked message ${id} is attempted now`);
    await page.getByTestId('parked-empty').waitFor();
    expect(parcels).toEqual(['parcel-9:0', 'parcel-9:1']);
    await expect.poll(() => page.getByTestId('parked-badge').isHidden()).toBe(true);
  });

  it('shows a message waiting for its time and a schedule, cancels the message and pauses the schedule', async () => {
    await expect(page.getByTestId('scheduled-empty').textContent()).resolves.toBe('No message waits for its time.');
    await expect(page.getByTestId('schedules-empty').textContent()).resolves.toBe('No schedules.');
    const dueAt = new Date(Date.now() + 3_600_000);
    const [id] = await postbox.publish({ topic: 'browser-reminders', type: 'remind', key: 'invoice-3', payload: {}, deliverAt: dueAt });
    await postbox.schedule({ name: 'browser-weekly', cron: '0 9 * * 1', message: { topic: 'browser-reports', type: 'weekly' } });
    const row = page.locator(`[data-testid="scheduled-row"][data-id="${id}"]`);
    await row.waitFor();
    expect(await row.getAttribute('data-key')).toBe('invoice-3');
    expect(await row.getByTestId('scheduled-due').getAttribute('title')).toBe(dueAt.toISOString());
    await expect(page.getByTestId('time-status').textContent()).resolves.toMatch(/^1 waiting; next due /);
    const schedule = page.locator('[data-testid="schedule-row"][data-schedule="browser-weekly"][data-status="active"]');
    await schedule.waitFor();
    await screenshot(page, 'console-scheduled.png');

    await row.getByTestId('scheduled-cancel').click();
    await expect(row.getByTestId('scheduled-cancel').textContent()).resolves.toBe('Confirm cancel');
    expect(await postbox.listScheduled({ topic: 'browser-reminders' })).toHaveLength(1);
    await row.getByTestId('scheduled-cancel').click();
    await expect.poll(() => lastMessage(page, 'info')).toBe(`Scheduled message ${id} cancelled: it will not be delivered`);
    await page.getByTestId('scheduled-empty').waitFor();
    expect(await postbox.listScheduled({ topic: 'browser-reminders' })).toEqual([]);

    await schedule.getByTestId('schedule-pause').click();
    const paused = page.locator('[data-testid="schedule-row"][data-schedule="browser-weekly"][data-status="paused"]');
    await paused.waitFor();
    await expect(paused.getByTestId('schedule-next-tick').textContent()).resolves.toBe('paused');
    expect((await postbox.schedules.get('browser-weekly')).status).toBe('paused');
    await paused.getByTestId('schedule-resume').click();
    await schedule.waitFor();
    expect((await postbox.schedules.get('browser-weekly')).status).toBe('active');
    await postbox.schedules.delete('browser-weekly');
  });

  it('names the session whose open transaction holds readers back', async () => {
    let held: HeldTransaction | undefined;
    try {
      held = await holdTransaction(database.url, ['select pg_current_xact_id()']);
      const row = page.locator(`[data-testid="holder-row"][data-pid="${held.pid}"]`);
      // The panel shows transactions open for a second or more by default.
      await row.waitFor();
      expect(await row.getAttribute('data-database')).toBe(database.name);
      expect(await row.getAttribute('data-application')).toBe(held.applicationName);
      await expect(row.getByTestId('holder-application').textContent()).resolves.toBe(held.applicationName);
      await expect(row.textContent()).resolves.toContain('idle in transaction');
      await expect(page.getByTestId('watermark-delay').textContent()).resolves.toMatch(
        /^Readers wait for the oldest open writing transaction: /,
      );
      await screenshot(page, 'console-holders.png');
    } finally {
      await held?.end();
    }
    await page.locator(`[data-testid="holder-row"][data-pid="${held?.pid}"]`).waitFor({ state: 'detached' });
  });

  it('resets a group after a dry run that shows the counts', async () => {
    for (const consumer of consumers) await consumer.stop(2_000);
    const row = page.locator(`[data-testid="ops-group-row"][data-group="${catchUpGroup}"]`);
    await noMembers(page).waitFor();
    await row.getByTestId('group-reset').click();
    const dialog = page.getByTestId('reset-dialog');
    await dialog.waitFor();
    await expect(dialog.getByTestId('reset-confirm').isDisabled()).resolves.toBe(true);
    await dialog.getByTestId('reset-target').selectOption('earliest');
    await dialog.getByTestId('reset-dry-run').click();
    await expect.poll(() => dialog.getByTestId('reset-read-again').textContent()).toBe(String(backlog));
    await expect(dialog.getByTestId('reset-skipped').textContent()).resolves.toBe('0');
    await expect(dialog.getByTestId('reset-partition-row').count()).resolves.toBe(1);
    expect((await postbox.groupStatus(catchUpGroup))[0]?.lagMessages).toBe(0);
    await screenshot(page, 'console-reset-dry-run.png', 'dialog');

    // Another place undoes the dry run: the reset waits for a new one.
    await dialog.getByTestId('reset-target').selectOption('latest');
    await expect(dialog.getByTestId('reset-confirm').isDisabled()).resolves.toBe(true);
    await dialog.getByTestId('reset-target').selectOption('earliest');
    await dialog.getByTestId('reset-dry-run').click();
    await expect.poll(() => dialog.getByTestId('reset-confirm').isEnabled()).toBe(true);
    await dialog.getByTestId('reset-confirm').click();
    await dialog.waitFor({ state: 'detached' });
    await expect
      .poll(() => lastMessage(page, 'info'))
      .toBe(`Group ${catchUpGroup} reset: ${backlog} messages will be read again, 0 skipped.`);
    await expect.poll(() => row.getByTestId('ops-group-lag').textContent()).toBe(String(backlog));
    expect((await postbox.groupStatus(catchUpGroup))[0]?.lagMessages).toBe(backlog);
  });

  it('raised no page error and asked nothing of another origin', () => {
    expect(pageErrors).toEqual([]);
    expect(outsideRequests).toEqual([]);
  });
});
