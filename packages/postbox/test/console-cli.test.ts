import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Postbox } from '../src/postbox.js';
import { exited } from './support/child.js';
import { cli } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { waitFor } from './support/wait.js';

const bin = fileURLToPath(new URL('../src/cli/bin.ts', import.meta.url));
const root = fileURLToPath(new URL('../../../', import.meta.url));

interface RunningUi {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
}

/** Starts `postbox ui` as a process of its own and resolves with the URL it prints. */
function startUi(args: string[], env: Record<string, string> = {}): Promise<RunningUi> {
  const { DATABASE_URL: _url, TIMESCALE_URI: _uri, POSTBOX_OPS_TOKEN: _token, ...inherited } = process.env;
  const child = spawn(process.execPath, ['--conditions=postbox-source', '--import', 'tsx', bin, 'ui', ...args], {
    cwd: root,
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += String(chunk);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`postbox ui printed no URL in 30 s: ${stderr}`)), 30_000);
    child.stdout?.on('data', (chunk) => {
      stdout += String(chunk);
      const url = /^Postbox console: (\S+)$/m.exec(stdout)?.[1];
      if (url) {
        clearTimeout(timer);
        resolve({ child, url, stdout: () => stdout, stderr: () => stderr });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`postbox ui exited with ${code} before printing its URL: ${stderr}`));
    });
  });
}

describe('postbox ui', () => {
  let database: TestDatabase;
  const running: ChildProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    const postbox = await Postbox.create({ databaseUrl: database.url });
    await postbox.publish({ topic: 'ui-topic', type: 'x', payload: {} });
    const consumer = postbox.consumer({ group: 'ui-group', topics: ['ui-topic'], handleMessage: async () => undefined });
    await consumer.start();
    await waitFor(async () => (await postbox.groupStatus('ui-group'))[0]?.lagMessages === 0, 10_000, 'the group');
    await consumer.stop();
    await postbox.close();
  });

  afterAll(async () => {
    for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
    await database?.drop();
  });

  it('serves the page and the API of the database on loopback, prints where, and stops on SIGTERM', async () => {
    const ui = await startUi(['--port', '0', '--database-url', database.url]);
    running.push(ui.child);
    expect(ui.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(ui.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>Postbox console</title>');
    expect((await fetch(`${ui.url}assets/js/main.js`)).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const groups = (await (await fetch(`${ui.url}api/groups`)).json()) as { group: string; lagMessages: number }[];
    expect(groups).toEqual([expect.objectContaining({ group: 'ui-group', lagMessages: 0 })]);
    expect(await (await fetch(`${ui.url}api/console`)).json()).toMatchObject({
      tokenRequired: false,
      readOnly: false,
      database: expect.stringContaining(database.name),
    });
    const missing = await fetch(`${ui.url}api/dead-letters/999999999/retry`, { method: 'POST' });
    expect(missing.status).toBe(404);
    expect(ui.stderr()).toContain(`postbox: serving postgres postgres://postgres@127.0.0.1:5432/${database.name}. Ctrl-C stops it.`);

    ui.child.kill('SIGTERM');
    expect(await exited(ui.child)).toBe(0);
    expect(ui.stderr()).toContain('postbox: stopping on SIGTERM.');
    await expect(fetch(ui.url)).rejects.toThrow();
  });

  it('refuses a non-loopback host without a token, before it connects to anything', async () => {
    for (const host of ['0.0.0.0', '::']) {
      const refused = await cli(['ui', '--host', host, '--port', '0', '--database-url', 'postgres://nobody@127.0.0.1:1/nowhere']);
      expect(refused.code, refused.stderr).toBe(1);
      expect(refused.stderr).toMatch(/^postbox: POSTBOX_ERR_CONSOLE_UNGUARDED: .*Set POSTBOX_OPS_TOKEN/m);
      expect(refused.stdout).toBe('');
    }
    const short = await cli(['ui', '--token', 'short', '--port', '0', '--database-url', database.url]);
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/^postbox: POSTBOX_ERR_BAD_OPTION: The console token \(POSTBOX_OPS_TOKEN\) must be at least 8/m);
    const badPort = await cli(['ui', '--port', '70000', '--database-url', database.url]);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toMatch(/^postbox: POSTBOX_ERR_USAGE: .*port/m);
  });

  it('listens beyond loopback read-only without a token, and refuses every change and any body over the limit', async () => {
    const ui = await startUi(['--host', '0.0.0.0', '--port', '0', '--read-only', '--database-url', database.url]);
    running.push(ui.child);
    const base = `http://127.0.0.1:${new URL(ui.url).port}/`;
    expect((await fetch(`${base}api/groups`)).status).toBe(200);
    const change = await fetch(`${base}api/groups/ui-group/reset`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'earliest', dryRun: true }),
    });
    expect(change.status).toBe(403);
    expect(((await change.json()) as { error: { code: string } }).error.code).toBe('POSTBOX_ERR_CONSOLE_READ_ONLY');
    ui.child.kill('SIGTERM');
    expect(await exited(ui.child)).toBe(0);

    const local = await startUi(['--port', '0', '--database-url', database.url]);
    running.push(local.child);
    const huge = await fetch(`${local.url}api/groups/ui-group/reset`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'earliest', dryRun: true, padding: 'x'.repeat(70_000) }),
    });
    expect(huge.status).toBe(413);
    local.child.kill('SIGTERM');
    expect(await exited(local.child)).toBe(0);
  });

  it('listens beyond loopback with POSTBOX_OPS_TOKEN, and needs it for changes', async () => {
    const token = 'ui-token-from-env';
    const ui = await startUi(['--host', '0.0.0.0', '--port', '0', '--database-url', database.url], { POSTBOX_OPS_TOKEN: token });
    running.push(ui.child);
    const port = new URL(ui.url).port;
    const base = `http://127.0.0.1:${port}/`;
    expect((await fetch(`${base}api/groups`)).status).toBe(200);
    const without = await fetch(`${base}api/groups/ui-group/reset`, { method: 'POST' });
    expect(without.status).toBe(401);
    expect(((await without.json()) as { error: { code: string } }).error.code).toBe('POSTBOX_ERR_UNAUTHORIZED');
    const dryRun = await fetch(`${base}api/groups/ui-group/reset`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'earliest', dryRun: true }),
    });
    expect(dryRun.status).toBe(200);
    expect(await dryRun.json()).toMatchObject({ group: 'ui-group', dryRun: true, readAgain: 1, skipped: 0 });
    ui.child.kill('SIGINT');
    expect(await exited(ui.child)).toBe(0);
    expect(ui.stderr()).toContain('postbox: stopping on SIGINT.');
  });
});
