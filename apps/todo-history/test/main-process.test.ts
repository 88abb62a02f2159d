import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from './support/system.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));

function start(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const { DATABASE_URL: _url, TIMESCALE_URI: _uri, POSTBOX_DATA_DIR: _dir, ...inherited } = process.env;
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', main], {
    cwd: root,
    env: { ...inherited, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += String(chunk);
  });
  child.stderr?.on('data', (chunk) => {
    output += String(chunk);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

describe('the todo-history process', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'todo-history-'));

  afterAll(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts on embedded PGlite with no configuration, serves the API, and exits 0 on SIGTERM', async () => {
    const app = start({ POSTBOX_DATA_DIR: dataDir, PORT: '0' });
    try {
      await waitFor(() => /todo-history: http:\/\/127\.0\.0\.1:\d+/.test(app.output()), 45_000, `the URL line: ${app.output()}`);
      const base = /todo-history: (http:\/\/127\.0\.0\.1:\d+)/.exec(app.output())?.[1] as string;
      const created = await fetch(`${base}/api/groups`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'From a process', user: 'alice' }),
      });
      expect(created.status).toBe(201);
      const { groupId } = (await created.json()) as { groupId: string };
      await waitFor(
        async () => ((await (await fetch(`${base}/api/logs/group/${groupId}`)).json()) as { items: unknown[] }).items.length === 1,
        5_000,
        'the history row',
      );
      expect((await fetch(`${base}/`)).status).toBe(200);
      app.child.kill('SIGTERM');
      expect(await app.exited).toBe(0);
    } finally {
      app.child.kill('SIGKILL');
    }
  });

  it('refuses a bad setting with a message naming the variable, and exits 1', async () => {
    const app = start({ POSTBOX_DATA_DIR: dataDir, PORT: 'eighty' });
    expect(await app.exited).toBe(1);
    expect(app.output()).toMatch(/todo-history: POSTBOX_ERR_CONFIG: PORT /);
  });
});
