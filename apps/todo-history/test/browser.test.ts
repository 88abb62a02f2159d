import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Locator, type Page } from 'playwright-core';
import { createLogger, Router } from 'postbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { type System, startSystem } from '../src/system.js';

const chromiumPath = '/usr/bin/chromium';
const resultsDir = fileURLToPath(new URL('../test-results/', import.meta.url));
const screenshotPath = join(resultsDir, 'todo-history-page.png');
const opsScreenshotPath = join(resultsDir, 'todo-history-operations.png');
const opsToken = 'browser-test-ops-token';

/** The page's own history timeline, read as the user sees it: newest first. */
async function timeline(page: Page) {
  return page.getByTestId('history-entry').evaluateAll((entries) =>
    entries.map((entry) => {
      const text = (testid: string) => entry.querySelector(`[data-testid="${testid}"]`)?.textContent?.trim() ?? null;
      return {
        eventType: text('history-event-type'),
        entity: entry.getAttribute('data-entity'),
        changes: text('history-changes'),
        user: text('history-user'),
        fallback: entry.querySelector('[data-testid="history-fallback"]') !== null,
      };
    }),
  );
}

const messages = (page: Page, kind: 'error' | 'info') => page.locator(`[data-testid="message"][data-kind="${kind}"]`);

/** The newest message of a kind in the page's message area, or null when there is none. */
const lastMessage = (page: Page, kind: 'error' | 'info') =>
  messages(page, kind)
    .getByTestId('message-text')
    .evaluateAll((texts) => texts.at(-1)?.textContent ?? null);

describe('the todo history page in Chromium', () => {
  let dataDir: string;
  let system: System | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let baseUrl: string;
  let parking: Router | undefined;

  beforeAll(async () => {
    if (!existsSync(chromiumPath)) {
      throw new Error(`Chromium is not installed at ${chromiumPath}; the page test needs it: apt-get install chromium`);
    }
    dataDir = mkdtempSync(join(tmpdir(), 'todo-history-browser-'));
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      POSTBOX_DATA_DIR: join(dataDir, 'pglite'),
      OPS_TOKEN: opsToken,
      OUTBOX_INTERVAL: '100ms',
      OUTBOX_RETRY_DELAY: '20ms',
    });
    system = await startSystem(config, { logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', name: 'browser-test' }) });
    baseUrl = await system.listen();
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    page.setDefaultTimeout(10_000);
  });

  afterAll(async () => {
    await browser?.close();
    await parking?.stop(2_000);
    await system?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('drives the board, shows the live history, and handles a dead letter, a parked message and a scheduled one', async () => {
    const pageErrors: string[] = [];
    const outsideRequests: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('request', (request) => {
      if (!request.url().startsWith(baseUrl) && !request.url().startsWith('data:')) outsideRequests.push(request.url());
    });

    await page.goto(baseUrl);
    await expect(page.title()).resolves.toBe('Todo history');
    await expect(page.getByTestId('board-empty').textContent()).resolves.toContain('No groups yet');

    const userInput = page.getByTestId('user-input');
    expect(await userInput.inputValue()).toBe('alice');
    await userInput.fill('browser-bob');
    await userInput.press('Tab');

    await page.getByTestId('group-name-input').fill('Launch plan');
    await page.getByTestId('group-workspace-input').fill('marketing');
    await page.getByTestId('group-create').click();
    const group = page.locator('[data-testid="group-card"][data-group-name="Launch plan"]');
    await group.waitFor();
    await expect(group.getByTestId('group-workspace').textContent()).resolves.toBe('marketing');

    await group.getByTestId('task-name-input').fill('Write announcement');
    await group.getByTestId('task-description-input').fill('Blog post and newsletter');
    await group.getByTestId('task-create').click();
    const task: Locator = group.locator('[data-testid="task-row"][data-task-name="Write announcement"]');
    await task.waitFor();
    await expect(task.getByTestId('task-description').textContent()).resolves.toBe('Blog post and newsletter');
    expect(await task.getAttribute('data-status')).toBe('pending');

    await task.getByTestId('task-status').selectOption('in-progress');
    await group.locator('[data-testid="task-row"][data-task-name="Write announcement"][data-status="in-progress"]').waitFor();

    await task.getByTestId('task-comment-toggle').click();
    await task.getByTestId('task-comment-input').fill('First draft is in the shared folder');
    await task.getByTestId('task-comment-save').click();
    await expect.poll(() => task.getByTestId('task-comment-count').textContent()).toBe('1 comment');

    await group.getByTestId('group-history').click();
    expect(await page.getByTestId('history-group-select').inputValue()).toBe(await group.getAttribute('data-group-id'));
    await expect.poll(() => timeline(page), { timeout: 15_000 }).toHaveLength(4);
    expect(await timeline(page)).toEqual([
      {
        eventType: 'commented',
        entity: 'Task',
        changes: 'Comment added: First draft is in the shared folder',
        user: 'browser-bob',
        fallback: false,
      },
      {
        eventType: 'status_changed',
        entity: 'Task',
        changes: 'Status changed from pending to in-progress',
        user: 'browser-bob',
        fallback: false,
      },
      { eventType: 'created', entity: 'Task', changes: "Task 'Write announcement' was created", user: 'browser-bob', fallback: false },
      { eventType: 'created', entity: 'Group', changes: "Group 'Launch plan' was created", user: 'browser-bob', fallback: false },
    ]);
    await expect(page.getByTestId('history-live').textContent()).resolves.toMatch(/^Live · 4 entries/);

    await task.getByTestId('task-history').click();
    await expect
      .poll(async () => (await timeline(page)).map((entry) => entry.eventType))
      .toEqual(['commented', 'status_changed', 'created']);

    await task.getByTestId('task-status').selectOption('completed');
    await expect
      .poll(async () => (await timeline(page))[0], { timeout: 15_000 })
      .toEqual({
        eventType: 'status_changed',
        entity: 'Task',
        changes: 'Status changed from in-progress to completed',
        user: 'browser-bob',
        fallback: false,
      });

    const groupId = (await group.getAttribute('data-group-id'))!;
    const taskId = (await task.getAttribute('data-task-id'))!;
    await task.getByTestId('task-comment-toggle').click();
    await task.getByTestId('task-comment-input').fill('Too late');
    const deletedElsewhere = await page.request.delete(`${baseUrl}/api/tasks/${taskId}?user=someone-else`);
    expect(deletedElsewhere.status()).toBe(200);
    await task.getByTestId('task-comment-save').click();
    await expect.poll(() => lastMessage(page, 'error')).toMatch(/^Adding the comment: No task has id .* \(TODO_ERR_NOT_FOUND\)/);
    await group.getByTestId('task-list-empty').waitFor();

    await system!.postbox.db.query(`select postbox.publish('todo-history-events', 'bad', '{"eventType":1}'::jsonb)`);
    await expect.poll(async () => (await system!.postbox.deadLetters.list()).length, { timeout: 15_000 }).toBe(1);
    // The app's page counts open dead letters beside its link to the operations console.
    await page.reload();
    await expect.poll(() => page.getByTestId('dead-letter-badge').textContent()).toBe('1');
    await page.getByTestId('ops-link').click();
    await page.waitForURL(`${baseUrl}/ops/`);
    await expect(page.title()).resolves.toBe('Postbox console');
    await page.locator('[data-testid="ops-group-row"][data-group="todo-consumer-group-go"]').waitFor();
    await page.getByTestId('relay-disabled').waitFor();

    // The history group's partitions (HISTORY_PARTITIONS, 4 by default), all held by the app's one member.
    const historyGroup = 'todo-consumer-group-go';
    const [historyStatus] = await system!.postbox.groupStatus(historyGroup);
    expect(historyStatus?.members).toHaveLength(1);
    const member = historyStatus?.members[0]?.member as string;
    const partitionRows = page.locator(`[data-testid="ops-partition-row"][data-group="${historyGroup}"]`);
    await expect
      .poll(() =>
        partitionRows.evaluateAll((rows) =>
          rows.map((row) => ({
            partition: row.getAttribute('data-partition'),
            owner: row.querySelector('[data-testid="ops-partition-owner"]')?.textContent,
            unowned: row.querySelector('[data-testid="ops-partition-unowned"]')?.textContent,
          })),
        ),
      )
      .toEqual(['0', '1', '2', '3'].map((partition) => ({ partition, owner: member, unowned: '—' })));
    const memberRows = page.locator(`[data-testid="ops-member-row"][data-group="${historyGroup}"]`);
    await expect
      .poll(() =>
        memberRows.evaluateAll((rows) =>
          rows.map((row) => ({
            member: row.getAttribute('data-member'),
            live: row.getAttribute('data-live'),
            partitions: row.querySelector('[data-testid="ops-member-partitions"]')?.textContent,
          })),
        ),
      )
      .toEqual([{ member, live: 'true', partitions: '0, 1, 2, 3' }]);
    await expect(
      page.locator(`[data-testid="ops-group-row"][data-group="${historyGroup}"]`).getByTestId('ops-group-partitions').textContent(),
    ).resolves.toBe('4/4 owned');
    expect(await page.locator(`[data-testid="ops-group-detail"][data-group="${historyGroup}"]`).isVisible()).toBe(true);
    const letter = page.getByTestId('dead-letter-row').first();
    await letter.waitFor({ timeout: 15_000 });
    await expect(letter.getByTestId('dead-letter-error').textContent()).resolves.toMatch(/eventType/);
    const first = { id: await letter.getAttribute('data-id'), failedAt: Date.parse((await letter.getAttribute('data-last-failed-at'))!) };
    expect(first.failedAt).toBeGreaterThan(0);
    await expect(page.getByTestId('dead-letter-badge').textContent()).resolves.toBe('1');

    // A parked message and a message waiting for its time, made through the library, on the operations page.
    parking = new Router(system!.postbox, { redeliveryIntervalMs: 100 }).addHandler({
      name: 'task-reminders',
      topics: ['task-reminders'],
      retry: { maxAttempts: 1 },
      park: { initialDelayMs: 600_000, maxDelayMs: 600_000, jitter: 0, maxAttempts: null, maxAgeMs: 3_600_000 },
      handle: async () => {
        throw new Error('the mail server is down');
      },
    });
    await parking.start();
    await system!.postbox.publish({ topic: 'task-reminders', type: 'remind', key: taskId, payload: { taskId } });
    const [waitingId] = await system!.postbox.publish({
      topic: 'task-reminders',
      type: 'remind-later',
      key: taskId,
      payload: { taskId },
      delayMs: 3_600_000,
    });
    const parkedRow = page.locator(`[data-testid="parked-row"][data-key="${taskId}"][data-status="waiting"]`);
    await parkedRow.waitFor({ timeout: 15_000 });
    await expect(parkedRow.getByTestId('parked-error').textContent()).resolves.toBe('the mail server is down');
    await expect(page.getByTestId('parked-badge').textContent()).resolves.toBe('1');
    const waitingRow = page.locator(`[data-testid="scheduled-row"][data-id="${waitingId}"]`);
    await waitingRow.waitFor();
    expect(await waitingRow.getAttribute('data-topic')).toBe('task-reminders');
    await expect(page.getByTestId('time-status').textContent()).resolves.toMatch(/^1 waiting; next due /);

    mkdirSync(resultsDir, { recursive: true });
    await page.evaluate('window.scrollTo(0, 0)');
    rmSync(opsScreenshotPath, { force: true });
    await page.screenshot({ path: opsScreenshotPath, fullPage: true });
    expect(statSync(opsScreenshotPath).size).toBeGreaterThan(10_000);

    await letter.getByTestId('dead-letter-retry').click();
    await page.getByTestId('token-panel').waitFor();
    await expect(page.getByTestId('token-reason').textContent()).resolves.toContain('Authorization: Bearer <OPS_TOKEN>');
    await expect.poll(() => lastMessage(page, 'error')).toContain('POSTBOX_ERR_UNAUTHORIZED');
    await page.getByTestId('token-input').fill(opsToken);
    await page.getByTestId('token-save').click();
    await letter.getByTestId('dead-letter-retry').click();
    await expect.poll(() => lastMessage(page, 'info')).toBe(`Dead letter ${first.id} sent back to its group`);
    await expect
      .poll(() =>
        messages(page, 'error').evaluateAll((errors) => errors.some((error) => error.textContent?.includes('POSTBOX_ERR_UNAUTHORIZED'))),
      )
      .toBe(false);

    const failedAgain = () =>
      page
        .locator('[data-testid="dead-letter-row"][data-status="pending"]')
        .evaluateAll((rows) =>
          rows.map((row) => ({ id: row.getAttribute('data-id'), failedAt: Date.parse(row.getAttribute('data-last-failed-at') ?? '') })),
        );
    await expect
      .poll(async () => (await failedAgain()).some((row) => row.id !== first.id || row.failedAt > first.failedAt), { timeout: 15_000 })
      .toBe(true);
    const discard = page.locator('[data-testid="dead-letter-row"][data-status="pending"]').first().getByTestId('dead-letter-discard');
    await discard.click();
    await discard.click();
    await page.getByTestId('dead-letters-empty').waitFor({ timeout: 15_000 });
    await expect.poll(() => lastMessage(page, 'info')).toMatch(/^Dead letter \d+ discarded$/);

    await waitingRow.getByTestId('scheduled-cancel').click();
    await waitingRow.getByTestId('scheduled-cancel').click();
    await page.getByTestId('scheduled-empty').waitFor();
    expect(await system!.postbox.listScheduled({ topic: 'task-reminders' })).toEqual([]);
    await parkedRow.getByTestId('parked-discard').click();
    await parkedRow.getByTestId('parked-discard').click();
    await page.getByTestId('parked-empty').waitFor();
    await expect.poll(() => lastMessage(page, 'info')).toMatch(/^Parked message \d+ of group task-reminders discarded$/);
    expect(await system!.postbox.parked.list({ group: 'task-reminders' })).toEqual([]);

    const unreadableTime = 'last Tuesday, roughly';
    const imported = {
      eventType: 'commented',
      timestamp: unreadableTime,
      payload: {
        entity: 'Task',
        entityId: taskId,
        groupId,
        groupName: 'Launch plan',
        taskId,
        taskName: 'Write announcement',
        changes: 'Comment imported from the old tracker',
        user: 'importer',
        workspace: 'marketing',
        timestamp: unreadableTime,
      },
    };
    await system!.postbox.db.query(`select postbox.publish('todo-history-events', 'todo.task.commented', $1::jsonb, $2)`, [
      JSON.stringify(imported),
      groupId,
    ]);

    // The console keeps the token for the tab; the app's page keeps the user.
    await page.reload();
    await expect(page.getByTestId('token-toggle').textContent()).resolves.toContain('✓');
    await page.goto(baseUrl);
    expect(await page.getByTestId('user-input').inputValue()).toBe('browser-bob');
    await expect.poll(() => page.getByTestId('dead-letter-badge').isHidden()).toBe(true);

    await page.getByTestId('history-group-select').selectOption(groupId);
    await expect.poll(async () => (await timeline(page)).length, { timeout: 15_000 }).toBe(7);
    const entries = await timeline(page);
    expect(entries.slice(0, 2)).toEqual([
      { eventType: 'commented', entity: 'Task', changes: 'Comment imported from the old tracker', user: 'importer', fallback: true },
      { eventType: 'deleted', entity: 'Task', changes: "Task 'Write announcement' was deleted", user: 'someone-else', fallback: false },
    ]);
    expect(entries.filter((entry) => entry.fallback)).toHaveLength(1);

    await page.evaluate('window.scrollTo(0, 0)');
    rmSync(screenshotPath, { force: true });
    await page.screenshot({ path: screenshotPath, fullPage: true });
    expect(statSync(screenshotPath).size).toBeGreaterThan(10_000);

    expect(pageErrors).toEqual([]);
    expect(outsideRequests).toEqual([]);
  });
});
