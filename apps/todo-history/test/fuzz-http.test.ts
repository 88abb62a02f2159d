import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostileText, propertyRuns, textAround } from '../../../packages/postbox/test/support/properties.js';
import { type Answer, call, openSystem, type TestSystem, waitFor } from './support/system.js';

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

/** Percent-encodes the UTF-8 bytes of a string (a lone surrogate becomes U+FFFD, as in any client). */
function encode(text: string): string {
  return [...Buffer.from(text, 'utf8')]
    .map((byte) =>
      /[A-Za-z0-9_.~-]/.test(String.fromCharCode(byte))
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');
}

/** Escapes no client should send: invalid UTF-8, broken escapes, NUL, separators. */
const rawEscapes = ['%FF', '%ED%A0%80', '%C0%AF', '%', '%zz', '%00', '+', '&', '=', '%2F', '..', '%2e%2e'];

/** Values PostgreSQL refuses or changes: NUL, lone surrogates, a leading U+FEFF, overlong text. */
const nastyText = fc.constantFrom('\u0000', 'a\u0000b', '\ud800', 'x\udc00', '\ufeffx', 'g1\u0000', 'x'.repeat(101), 'é'.repeat(300));

const cursorDocument = fc.record(
  {
    v: fc.oneof({ weight: 6, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constantFrom(2, '1') }),
    k: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('logs', 'groups', 'tasks') }, { weight: 1, arbitrary: fc.constant('other') }),
    t: fc.oneof(
      fc.constantFrom(
        '2025-11-10T11:30:00.000000Z',
        '2025-13-45T99:99:99.000000Z',
        '0000-01-01T00:00:00.000000Z',
        '9999-12-31T23:59:59.999999Z',
        '2025-02-30T00:00:00.000000Z',
      ),
      hostileText,
    ),
    i: fc.oneof(fc.constantFrom('1', '9223372036854775807', '9223372036854775808', '9999999999999999999', '-1'), nastyText, hostileText),
    m: fc.oneof(fc.constantFrom('1', '9223372036854775807', '9999999999999999999', '0'), hostileText),
  },
  { requiredKeys: ['v', 'k', 't', 'i'] },
);
const cursor = fc.oneof(
  cursorDocument.map((document) => Buffer.from(JSON.stringify(document)).toString('base64url')),
  fc.base64String({ maxLength: 80 }),
);

const queryValue = fc.oneof(
  { weight: 4, arbitrary: hostileText.map(encode) },
  { weight: 2, arbitrary: nastyText.map(encode) },
  { weight: 2, arbitrary: fc.constantFrom(...rawEscapes) },
  { weight: 2, arbitrary: fc.integer({ min: -5, max: 2_000_000 }).map(String) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '2025-11-10',
      '2025-11-10T15:30:45Z',
      '2025-11-10T15:30:45.123456789%2B05:30',
      '0000-01-01',
      '9999-12-31T23:59:59Z',
      '2025-02-30',
      '1e3',
      '0x10',
      '99999999999999999999',
      'created',
      'status_changed',
      'alice',
      'g1',
    ),
  },
  { weight: 2, arbitrary: cursor },
  { weight: 1, arbitrary: textAround(1_500).map(encode) },
);
const queryName = fc.constantFrom(
  'limit',
  'cursor',
  'from',
  'to',
  'eventType',
  'user',
  'group',
  'groupId',
  'taskId',
  'after',
  'key',
  'topic',
  'status',
  '__proto__',
  'constructor',
  'limit[]',
  'x',
);
const queryString = fc
  .array(fc.tuple(queryName, queryValue), { maxLength: 5 })
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([name, value]) => `${name}=${value}`).join('&')}`));

const fieldName = fc.constantFrom(
  'name',
  'user',
  'workspace',
  'description',
  'text',
  'status',
  'group',
  'key',
  '__proto__',
  'constructor',
  'extra',
);
const fieldValue = fc.oneof(
  { weight: 6, arbitrary: hostileText },
  { weight: 2, arbitrary: nastyText },
  { weight: 1, arbitrary: textAround(255) },
  { weight: 1, arbitrary: textAround(2_000) },
  { weight: 2, arbitrary: fc.constantFrom('pending', 'in-progress', 'completed', 'alice', 'default') },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);
/** JSON text written by hand, so that keys such as __proto__ really are in the body. */
const objectBody = fc
  .array(fc.tuple(fieldName, fieldValue), { maxLength: 5 })
  .map((entries) => `{${entries.map(([name, value]) => `${JSON.stringify(name)}:${JSON.stringify(value)}`).join(',')}}`);
/** Every field a write route reads, each of the right type: these bodies get past the schema often. */
const likelyBody = fc
  .record({
    name: hostileText,
    user: hostileText,
    description: hostileText,
    text: hostileText,
    status: fc.constantFrom('pending', 'in-progress', 'completed'),
  })
  .map((fields) => JSON.stringify(fields));
const body = fc.oneof(
  { weight: 6, arbitrary: likelyBody },
  { weight: 8, arbitrary: objectBody },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)) },
  { weight: 1, arbitrary: hostileText },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 5_000 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', 'null', '{', '{"name":', '\u0000') },
);
const contentType = fc.oneof(
  { weight: 8, arbitrary: fc.constant('application/json') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/json; charset=latin1',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      '',
    ),
  },
);

const answerWithin = async (promise: Promise<Answer>, where: string): Promise<Answer> => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within 5 s: ${where}`)), 5_000);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
};

/** One request with the body and content type exactly as given (none when the type is empty). */
async function send(system: TestSystem, method: Method, url: string, payload: string, type: string): Promise<Answer> {
  const response = await system.app.inject({ method, url, headers: type === '' ? {} : { 'content-type': type }, payload });
  let parsed: unknown;
  try {
    parsed = response.body ? JSON.parse(response.body) : undefined;
  } catch {
    parsed = response.body;
  }
  return { status: response.statusCode, body: parsed, response };
}

/** Never a 5xx; every 4xx says what was wrong. */
function expectAnswered(answer: Answer, where: string): void {
  expect(answer.status, `${where} -> ${JSON.stringify(answer.body)?.slice(0, 300)}`).toBeLessThan(500);
  expect(answer.status, where).toBeGreaterThanOrEqual(200);
  if (answer.status >= 400) {
    const message = answer.body?.error?.message ?? answer.body?.message;
    expect(typeof message === 'string' && message.length > 0, `${where} -> ${JSON.stringify(answer.body)?.slice(0, 300)}`).toBe(true);
  }
}

describe('HTTP API under fuzzed input', () => {
  let system: TestSystem;
  let listening: Promise<string> | undefined;
  const serverUrl = () => {
    listening ??= system.listen();
    return listening;
  };
  const groupIds: string[] = [];
  const taskIds: string[] = [];

  beforeAll(async () => {
    system = await openSystem('postgres', { PORT: '0' });
    for (let group = 0; group < 3; group++) {
      const created = await call(system, 'POST', '/api/groups', { name: `Fuzz ${group}`, user: 'alice' });
      groupIds.push(created.body.groupId);
      for (let task = 0; task < 2; task++) {
        const made = await call(system, 'POST', `/api/groups/${created.body.groupId}/tasks`, { name: `T${task}`, user: 'bob' });
        taskIds.push(made.body.taskId);
      }
    }
    // History rows must exist, or the summary reads return early without running the filtered query.
    await waitFor(async () => (await call(system, 'GET', '/api/logs/groups')).body.items.length === 3, 15_000, 'history rows');
  });

  afterAll(async () => {
    await system?.cleanup();
  });

  const pathId = (pool: () => string[]) =>
    fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(0, 1, 2).map((index) => pool()[index % pool().length] as string) },
      { weight: 1, arbitrary: fc.uuid() },
      { weight: 3, arbitrary: hostileText.map(encode) },
      { weight: 2, arbitrary: nastyText.map(encode) },
      { weight: 1, arbitrary: fc.constantFrom(...rawEscapes) },
      { weight: 1, arbitrary: textAround(1_100).map(encode) },
    );

  it('answers a path Fastify cannot decode with a 400 in the API error format', async () => {
    for (const path of ['/api/logs/task/%E0%A4%A', '/api/logs/group/%', '/api/groups/%zz/tasks']) {
      const answer = await call(system, 'GET', path);
      expect(answer.status, path).toBe(400);
      expect(answer.body.error?.code, path).toBe('TODO_ERR_BAD_REQUEST');
      expect(answer.body.error?.message, path).toEqual(expect.any(String));
    }
  });

  it('answers every query parameter of every read route with 2xx, or 4xx and a message', async () => {
    const routes: [Method, (ids: { group: string; task: string; letter: string }) => string][] = [
      ['GET', () => '/api/groups'],
      ['GET', ({ task }) => `/api/tasks/${task}/comments`],
      ['GET', () => '/api/logs/groups'],
      ['GET', ({ group }) => `/api/logs/group/${group}`],
      ['GET', ({ group }) => `/api/logs/group/${group}/tasks`],
      ['GET', ({ task }) => `/api/logs/task/${task}`],
      ['GET', () => '/ops/api/groups'],
      ['GET', () => '/ops/api/dead-letters'],
      ['GET', () => '/ops/api/relay'],
      ['GET', ({ letter }) => `/ops/api/dead-letters/${letter}`],
      ['GET', () => '/ops/api/dead-letters/counts'],
      ['GET', () => '/ops/api/holders'],
      ['GET', () => '/ops/api/projections'],
      ['GET', () => '/ops/api/samples'],
      ['GET', () => '/ops/api/parked'],
      ['GET', () => '/ops/api/parked/counts'],
      ['GET', () => '/ops/api/scheduled'],
      ['GET', () => '/ops/api/time-status'],
      ['GET', () => '/ops/api/schedules'],
      ['GET', () => '/health/live'],
      ['GET', () => '/health/ready'],
      ['GET', () => '/metrics'],
      ['DELETE', ({ group }) => `/api/groups/${group}`],
      ['DELETE', ({ task }) => `/api/tasks/${task}`],
      ['POST', ({ letter }) => `/ops/api/dead-letters/${letter}/retry`],
      ['POST', ({ letter }) => `/ops/api/dead-letters/${letter}/discard`],
      ['POST', ({ group }) => `/ops/api/groups/${group}/reset`],
      ['POST', ({ letter }) => `/ops/api/parked/${letter}/release`],
      ['POST', ({ letter }) => `/ops/api/parked/${letter}/discard`],
      ['POST', () => '/ops/api/parked/release'],
      ['POST', () => '/ops/api/parked/discard'],
      ['POST', ({ task }) => `/ops/api/scheduled/${task}/cancel`],
      ['POST', ({ group }) => `/ops/api/schedules/${group}/pause`],
      ['POST', ({ group }) => `/ops/api/schedules/${group}/resume`],
    ];
    const letter = fc.oneof(fc.integer({ min: -1, max: 1_000 }).map(String), fc.constant('99999999999999999999'), hostileText.map(encode));
    const runs = propertyRuns(400);
    let answered = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        pathId(() => groupIds),
        pathId(() => taskIds),
        letter,
        queryString,
        async ([method, path], group, task, dead, query) => {
          const url = `${path({ group, task, letter: dead })}${query}`;
          const answer = await answerWithin(call(system, method, url), `${method} ${url}`);
          expectAnswered(answer, `${method} ${url}`);
          answered++;
        },
      ),
      runs,
    );
    expect(answered).toBeGreaterThanOrEqual(runs.numRuns ?? 1);
  });

  it('answers any cursor, even a well-formed one pointing nowhere PostgreSQL can go, with a page or a 400', async () => {
    const lists = [
      '/api/logs/groups',
      `/api/logs/group/${groupIds[0]}`,
      `/api/logs/group/${groupIds[0]}/tasks`,
      `/api/logs/task/${taskIds[0]}`,
    ];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...lists), cursor, async (list, text) => {
        const url = `${list}?limit=1&cursor=${text}`;
        const answer = await answerWithin(call(system, 'GET', url), url);
        expectAnswered(answer, url);
        if (answer.status === 400) expect(answer.body.error.field).toBe('cursor');
      }),
      propertyRuns(300),
    );
  });

  it('serves nothing from outside the page folder, whatever the path', async () => {
    const segment = fc.constantFrom(
      '..',
      '%2e%2e',
      '%2E%2E',
      '.%2e',
      '%2e.',
      '%2f',
      '%5c',
      '..%5c',
      '..%2f',
      '',
      '.',
      'src',
      'main.ts',
      'package.json',
      'README.md',
      '%00',
      'index.html',
    );
    await fc.assert(
      fc.asyncProperty(fc.array(segment, { minLength: 1, maxLength: 7 }), async (segments) => {
        const url = `/${segments.join('/')}`;
        const answer = await answerWithin(call(system, 'GET', url), url);
        expect(answer.status, url).toBeLessThan(500);
        const text = answer.response.body;
        expect(text, url).not.toContain('"dependencies"');
        expect(text, url).not.toContain('export function');
        expect(text, url).not.toContain('# todo-history');
      }),
      propertyRuns(300),
    );
  });

  it('answers every body of every write route with 2xx, or 4xx and a message', async () => {
    const routes: [Method, (ids: { group: string; task: string }) => string][] = [
      ['POST', () => '/api/groups'],
      ['PATCH', ({ group }) => `/api/groups/${group}`],
      ['POST', ({ group }) => `/api/groups/${group}/tasks`],
      ['PATCH', ({ task }) => `/api/tasks/${task}`],
      ['PUT', ({ task }) => `/api/tasks/${task}/status`],
      ['POST', ({ task }) => `/api/tasks/${task}/comments`],
      ['POST', () => '/ops/api/parked/release'],
      ['POST', () => '/ops/api/parked/discard'],
    ];
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        pathId(() => groupIds),
        pathId(() => taskIds),
        body,
        contentType,
        async ([method, path], group, task, payload, type) => {
          const url = path({ group, task });
          const response = await answerWithin(send(system, method, url, payload, type), `${method} ${url}`);
          expectAnswered(response, `${method} ${url} ${type} ${payload.slice(0, 200)}`);
          statuses.add(response.status);
        },
      ),
      propertyRuns(400),
    );
    // The inputs reached both outcomes: some were stored, some refused.
    expect([...statuses].some((status) => status < 300)).toBe(true);
    expect([...statuses].some((status) => status >= 400)).toBe(true);
  });

  it('turned everything it accepted into history events the consumer could read', async () => {
    await waitFor(
      async () => (await system.postbox.groupStatus(system.config.history.group))[0]?.lagMessages === 0,
      30_000,
      'the history consumer to catch up',
    );
    expect(await system.postbox.deadLetters.list({ group: system.config.history.group })).toEqual([]);
    const ready = await call(system, 'GET', '/health/ready');
    expect(ready.status).toBe(200);
  });

  it('refuses a body over the limit with 413 on every write route, and takes one just under it', async () => {
    const limit = system.config.bodyLimitBytes;
    const routes: [Method, string][] = [
      ['POST', '/api/groups'],
      ['PATCH', `/api/groups/${groupIds[0]}`],
      ['POST', `/api/groups/${groupIds[0]}/tasks`],
      ['PATCH', `/api/tasks/${taskIds[0]}`],
      ['PUT', `/api/tasks/${taskIds[0]}/status`],
      ['POST', `/api/tasks/${taskIds[0]}/comments`],
      ['POST', '/ops/api/dead-letters/1/retry'],
    ];
    const padded = (bytes: number) => {
      const skeleton = JSON.stringify({ user: 'alice', padding: '' });
      return JSON.stringify({ user: 'alice', padding: 'p'.repeat(bytes - skeleton.length) });
    };
    for (const [method, url] of routes) {
      const over = await call(system, method, url, padded(limit + 1));
      expect(over.status, `${method} ${url}`).toBe(413);
      // The operations console (postbox/ops) answers with the library's codes.
      const code = url.startsWith('/ops/') ? 'POSTBOX_ERR_BAD_REQUEST' : 'TODO_ERR_BODY_TOO_LARGE';
      expect(over.body.error).toMatchObject({ code, message: expect.stringContaining('body') });
      const under = await call(system, method, url, padded(limit));
      expect(under.status, `${method} ${url}`).not.toBe(413);
      expect(under.status).toBeLessThan(500);
    }
  });

  it('refuses an over-limit body sent in chunks without a length, over a real connection', async () => {
    const url = await serverUrl();
    const chunk = new TextEncoder().encode(`{"name":"${'x'.repeat(16_000)}`);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 10) {
          controller.enqueue(new TextEncoder().encode('","user":"alice"}'));
          controller.close();
          return;
        }
        sent++;
        controller.enqueue(sent === 1 ? chunk : new TextEncoder().encode('x'.repeat(16_000)));
      },
    });
    const response = await fetch(`${url}/api/groups`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
      signal: AbortSignal.timeout(10_000),
    } as RequestInit);
    expect(response.status).toBe(413);
    expect(((await response.json()) as Answer['body']).error.code).toBe('TODO_ERR_BODY_TOO_LARGE');
  });

  it('answers the live feed with a stream or a 4xx, never hanging before the status line', async () => {
    const url = await serverUrl();
    const names = fc.constantFrom('groupId', 'taskId', 'after', 'x');
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(names, queryValue), { maxLength: 3 }),
        fc.option(queryValue, { nil: undefined }),
        async (pairs, lastEventId) => {
          const query = pairs.map(([name, value]) => `${name}=${value}`).join('&');
          const controller = new AbortController();
          const timer = setTimeout(() => controller.abort(), 5_000);
          try {
            const response = await fetch(`${url}/api/logs/stream?${query}`, {
              signal: controller.signal,
              headers: lastEventId === undefined ? {} : { 'last-event-id': decodeURIComponentSafe(lastEventId) },
            });
            expect(response.status, query).toBeLessThan(500);
            if (response.status === 200) expect(response.headers.get('content-type')).toContain('text/event-stream');
            else if (response.headers.get('content-type')?.includes('json')) {
              const refused = (await response.json()) as Answer['body'];
              expect(refused.error?.message ?? refused.message, `${response.status} ${JSON.stringify(refused)}`).toEqual(
                expect.any(String),
              );
            } else {
              // Refused by Node's HTTP parser before the app (431, 414): the status line says why.
              expect(response.statusText.length).toBeGreaterThan(0);
            }
          } finally {
            clearTimeout(timer);
            controller.abort();
          }
        },
      ),
      propertyRuns(60),
    );
  });
});

/** Header values must be ISO-8859-1 text; anything else is sent as its percent-encoded form. */
function decodeURIComponentSafe(text: string): string {
  try {
    const decoded = decodeURIComponent(text);
    return /^[\u0020-\u007e]*$/.test(decoded) ? decoded : text;
  } catch {
    return text;
  }
}
