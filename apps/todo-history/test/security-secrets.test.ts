import { Writable } from 'node:stream';
import { createLogger, isPostboxError } from 'postbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, serverUrl, type TestDatabase } from '../../../packages/postbox/test/support/postgres.js';
import { loadConfig } from '../src/config.js';
import { type System, startSystem } from '../src/system.js';
import { type MainProcess, startMainProcess } from './support/main-process.js';
import { call, publishRaw, sampleEvent, waitFor } from './support/system.js';

const password = 'App-Secret-Pw-9152';

/** The URL with a password that the test server (trust authentication) ignores. */
function withPassword(url: string): string {
  const parsed = new URL(url);
  parsed.username ||= 'postgres';
  parsed.password = password;
  return parsed.toString();
}

function start(env: Record<string, string>): MainProcess {
  return startMainProcess({ PORT: '0', LOG_LEVEL: 'debug', ...env });
}

describe('a database password given to todo-history', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('stays out of its logs, health, metrics and ops answers while it runs', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = createLogger({ level: 'trace', name: 'todo-history', destination });
    const config = loadConfig({
      DATABASE_URL: withPassword(database.url),
      PORT: '0',
      OUTBOX_INTERVAL: '100ms',
      OUTBOX_RETRY_DELAY: '20ms',
    });
    let system: System | undefined;
    try {
      system = await startSystem(config, { logger });
      logger.info({ database: system.postbox.db.description }, 'todo-history is listening');
      expect(system.postbox.db.description).not.toContain(password);
      const group = await call(system, 'POST', '/api/groups', { name: 'Secrets', user: 'alice' });
      expect(group.status).toBe(201);
      await publishRaw(system, { ...sampleEvent(), eventType: 'archived' });
      await waitFor(async () => (await call(system as System, 'GET', '/ops/api/dead-letters')).body.length === 1, 15_000, 'a dead letter');
      const answers = await Promise.all(
        ['/health/ready', '/health/live', '/metrics', '/ops/api/groups', '/ops/api/dead-letters', '/ops/api/relay', '/api/groups'].map(
          (url) => call(system as System, 'GET', url),
        ),
      );
      for (const answer of answers) {
        expect(answer.status).toBeLessThan(500);
        expect(answer.response.body).not.toContain(password);
      }
    } finally {
      await system?.close();
    }
    expect(lines.join('')).toContain('todo-history is listening');
    expect(lines.join('')).not.toContain(password);
  });

  it('stays out of configuration errors, even in a URL too broken to parse', () => {
    const broken = [
      `postgres://app:ab/${password}@db/app`,
      `postgres://app:${password}#x@db/app`,
      `postgres://app:${password}?x@db/app`,
      `host=db user=app password=${password}`,
      `mysql://app:${password}@db/app`,
      `postgres://app:${password}@db:99999/app`,
    ];
    for (const variable of ['DATABASE_URL', 'TIMESCALE_URI']) {
      for (const url of broken) {
        let error: unknown;
        try {
          loadConfig({ [variable]: url });
        } catch (caught) {
          error = caught;
        }
        expect(isPostboxError(error, 'POSTBOX_ERR_CONFIG'), url).toBe(true);
        expect((error as Error).message, url).toMatch(new RegExp(`^${variable} `));
        expect((error as Error).message, url).not.toContain(password);
      }
    }
  });

  it('stays out of what the process prints when it cannot start or when it runs', async () => {
    const unreachable = new URL(withPassword(serverUrl));
    unreachable.port = '1';
    const [refused, broken] = [
      start({ DATABASE_URL: unreachable.toString() }),
      start({ DATABASE_URL: `postgres://app:ab/${password}@db/x` }),
    ];
    const running = start({ DATABASE_URL: withPassword(database.url) });
    try {
      expect(await refused.exited).toBe(1);
      expect(refused.output()).toMatch(/ECONNREFUSED/);
      expect(await broken.exited).toBe(1);
      expect(broken.output()).toMatch(/todo-history: POSTBOX_ERR_CONFIG: DATABASE_URL /);
      await waitFor(() => /todo-history: http:\/\/127\.0\.0\.1:\d+/.test(running.output()), 45_000, `the URL line: ${running.output()}`);
      const base = /todo-history: (http:\/\/127\.0\.0\.1:\d+)/.exec(running.output())?.[1] as string;
      const ready = await (await fetch(`${base}/health/ready`)).text();
      expect(ready).not.toContain(password);
      running.child.kill('SIGTERM');
      expect(await running.exited).toBe(0);
    } finally {
      for (const run of [refused, broken, running]) run.child.kill('SIGKILL');
    }
    for (const run of [refused, broken, running]) expect(run.output()).not.toContain(password);
    // The running process did describe its database, masked.
    expect(running.output()).toContain('postgres:***@');
  });
});
