import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startMainProcess as start } from './support/main-process.js';
import { waitFor } from './support/system.js';

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
