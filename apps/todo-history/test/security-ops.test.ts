import { readdirSync, readFileSync } from 'node:fs';
import { isLoopbackHost } from 'postbox/ops';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, openSystem, publishRaw, type TestSystem, waitFor } from './support/system.js';

const token = 'a-long-ops-secret-42';

/** Every route of the app as `METHOD path`, read from Fastify's route tree. */
function routesOf(system: TestSystem): { method: string; path: string }[] {
  const stack: string[] = [];
  const routes: { method: string; path: string }[] = [];
  for (const line of system.app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^((?:│ {3}| {4})*)[├└]── (\S+) \(([^)]+)\)/.exec(line);
    if (!match) continue;
    const depth = (match[1] as string).length / 4;
    stack.length = depth;
    stack.push(match[2] as string);
    const path = stack.join('');
    for (const method of (match[3] as string).split(', ')) routes.push({ method, path });
  }
  return routes;
}

function mutatingOpsRoutes(system: TestSystem): { method: string; path: string }[] {
  const routes = routesOf(system).filter(
    (route) => route.path.startsWith('/ops/api/') && !['GET', 'HEAD', 'OPTIONS'].includes(route.method),
  );
  // The route table is read for real: an empty list would make every check below pass vacuously.
  expect(routes.map((route) => `${route.method} ${route.path}`)).toEqual(
    expect.arrayContaining([
      'POST /ops/api/dead-letters/:id/retry',
      'POST /ops/api/dead-letters/:id/discard',
      'POST /ops/api/groups/:group/reset',
      'POST /ops/api/projections/:name/rebuild',
    ]),
  );
  return routes;
}

async function deadLetterId(system: TestSystem): Promise<string> {
  await publishRaw(system, { eventType: 'archived' });
  let id: string | undefined;
  await waitFor(
    async () => {
      [id] = (await system.postbox.deadLetters.list({ group: system.config.history.group })).map((letter) => letter.id);
      return id !== undefined;
    },
    15_000,
    'a dead letter',
  );
  return id as string;
}

async function status(system: TestSystem, id: string): Promise<string> {
  return (await system.postbox.deadLetters.get(id)).status;
}

/** A route with its parameter (a dead letter's id, a group's or a projection's name) filled in. */
async function send(system: TestSystem, method: string, path: string, id: string, headers: Record<string, string> = {}) {
  return call(system, method as 'POST', path.replace(/:[a-z]+/, encodeURIComponent(id)), undefined, headers);
}

/** The console's files the app's page loads (its base stylesheet and shared modules), read from the page's own files. */
function sharedPageFiles(): string[] {
  const publicDir = new URL('../public/', import.meta.url);
  const sources = ['index.html', ...readdirSync(new URL('js/', publicDir)).map((name) => `js/${name}`)];
  const paths = sources.flatMap((name) => [...readFileSync(new URL(name, publicDir), 'utf8').matchAll(/['"](\/ops\/assets\/[^'"]+)['"]/g)]);
  return [...new Set(paths.map((match) => match[1] as string))].sort();
}

describe("the console's files the app's page loads", () => {
  const files = sharedPageFiles();

  it('are the base stylesheet and the shared modules', () => {
    expect(files).toEqual(
      expect.arrayContaining(['/ops/assets/base.css', '/ops/assets/js/api.js', '/ops/assets/js/dom.js', '/ops/assets/js/messages.js']),
    );
  });

  it.each([
    ['read-only, off loopback without OPS_TOKEN', { HOST: '0.0.0.0' }],
    ['OPS_TOKEN set', { HOST: '0.0.0.0', OPS_TOKEN: token }],
    ['on loopback without OPS_TOKEN', { HOST: '127.0.0.1' }],
  ])('are served to a request without a token: %s', async (_mode, env) => {
    const system = await openSystem('pglite', env);
    try {
      expect((await call(system, 'GET', '/')).status).toBe(200);
      for (const path of files) {
        const answer = await call(system, 'GET', path);
        expect(answer.status, path).toBe(200);
        expect(answer.response.headers['content-type'], path).toBe(
          path.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8',
        );
      }
    } finally {
      await system.cleanup();
    }
  });
});

describe('console routes that change state', () => {
  const systems: TestSystem[] = [];
  const open = async (env: Record<string, string>) => {
    const system = await openSystem('postgres', env);
    systems.push(system);
    return system;
  };

  afterAll(async () => {
    for (const system of systems) await system.cleanup();
  });

  it('are refused off loopback without OPS_TOKEN, whatever the request carries, and change nothing', async () => {
    const system = await open({ HOST: '0.0.0.0' });
    const id = await deadLetterId(system);
    for (const { method, path } of mutatingOpsRoutes(system)) {
      for (const target of [id, system.config.history.group]) {
        for (const headers of [{}, { authorization: 'Bearer anything-at-all' }, { authorization: '' }] as Record<string, string>[]) {
          const answer = await send(system, method, path, target, headers);
          expect(answer.status, `${method} ${path}`).toBe(403);
          expect(answer.body.error).toMatchObject({ code: 'POSTBOX_ERR_CONSOLE_READ_ONLY', message: expect.stringContaining('OPS_TOKEN') });
        }
      }
    }
    expect(await status(system, id)).toBe('pending');
    // Reading stays open.
    expect((await call(system, 'GET', '/ops/api/dead-letters')).status).toBe(200);
  });

  describe('with OPS_TOKEN set', () => {
    let system: TestSystem;

    beforeAll(async () => {
      system = await open({ HOST: '0.0.0.0', OPS_TOKEN: token });
    });

    it('refuse a missing or wrong token with 401 before looking at the id, and change nothing', async () => {
      const id = await deadLetterId(system);
      const wrong = [
        undefined,
        '',
        token,
        `Bearer ${token.slice(0, -1)}`,
        `Bearer ${token}x`,
        `Bearer ${token} `,
        `Bearer  ${token}`,
        `bearer ${token}`,
        `Basic ${Buffer.from(`ops:${token}`).toString('base64')}`,
        `Bearer ${token.toUpperCase()}`,
      ];
      for (const { method, path } of mutatingOpsRoutes(system)) {
        for (const authorization of wrong) {
          for (const target of [id, '999999999', 'not-an-id', system.config.history.group]) {
            const answer = await send(system, method, path, target, authorization === undefined ? {} : { authorization });
            expect(answer.status, `${method} ${path} ${authorization}`).toBe(401);
            expect(answer.body.error).toMatchObject({ code: 'POSTBOX_ERR_UNAUTHORIZED', message: expect.stringContaining('Bearer') });
          }
        }
      }
      expect(await status(system, id)).toBe('pending');
    });

    it('accept the right token', async () => {
      const id = await deadLetterId(system);
      const authorization = `Bearer ${token}`;
      const discarded = await send(system, 'POST', '/ops/api/dead-letters/:id/discard', id, { authorization });
      expect(discarded).toMatchObject({ status: 200, body: { id, status: 'discarded' } });
      expect(await status(system, id)).toBe('discarded');
      const missing = await send(system, 'POST', '/ops/api/dead-letters/:id/retry', '999999999', { authorization });
      expect(missing.status).toBe(404);
    });
  });

  it('work on loopback without a token', async () => {
    const system = await open({ HOST: '127.0.0.1' });
    const id = await deadLetterId(system);
    const retried = await send(system, 'POST', '/ops/api/dead-letters/:id/retry', id);
    expect(retried).toMatchObject({ status: 200, body: { id, status: 'retrying' } });
  });

  it('count only loopback addresses as loopback', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST']) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of [
      '0.0.0.0',
      '::',
      '[::]',
      '192.168.1.10',
      '10.0.0.1',
      'example.com',
      'localhost.example.com',
      '127.0.0.1.nip.io',
      '',
    ]) {
      expect(isLoopbackHost(host), host).toBe(false);
    }
  });
});
