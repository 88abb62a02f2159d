import { Writable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main.js';
import { cli, lines } from './support/cli.js';
import { createTestDatabase, serverUrl, type TestDatabase } from './support/postgres.js';
import { hostileText, propertyRuns } from './support/properties.js';

const password = 'Cli-Secret-4471';
const errorLine = /^postbox: POSTBOX_ERR_[A-Z_]+: \S/;

function sink(): { stream: Writable; text: () => string } {
  let text = '';
  return {
    stream: new Writable({
      write(chunk, _encoding, done) {
        text += String(chunk);
        done();
      },
    }),
    text: () => text,
  };
}

/** Runs the command line in this process, as the bin does, with its output captured. */
async function runInProcess(args: string[], env: Record<string, string>) {
  const stdout = sink();
  const stderr = sink();
  const code = await runCli(args, { stdout: stdout.stream, stderr: stderr.stream, env });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** A user error: one line naming its code, a non-zero exit, and no stack trace. */
function expectUserError(run: { code: number | null; stderr: string }, where: string): void {
  expect(run.code, where).not.toBe(0);
  expect(lines(run.stderr), where).toHaveLength(1);
  expect(run.stderr, where).toMatch(errorLine);
  expect(run.stderr, where).not.toMatch(/\n\s+at |\.ts:\d+|node:internal/);
}

const commands: string[][] = [
  ['publish'],
  ['tail'],
  ['status'],
  ['migrate'],
  ['groups', 'cleanup'],
  ['groups', 'delete'],
  ['retention'],
  ['dead-letters', 'list'],
  ['dead-letters', 'show'],
  ['dead-letters', 'retry'],
  ['dead-letters', 'discard'],
  ['projections', 'list'],
  ['projections', 'status'],
  ['projections', 'rebuild'],
  ['snapshots', 'create'],
  ['no-such-command'],
  [],
];
const flags = [
  '--topic',
  '--type',
  '--key',
  '--payload',
  '--header',
  '--trace-id',
  '--schema-version',
  '--group',
  '--from',
  '--limit',
  '--timeout',
  '--older-than',
  '--status',
  '--all',
  '--json',
  '--print',
  '--module',
  '--every',
  '--export',
  '--bogus',
  '-x',
  '--',
];
const value = fc.oneof(
  { weight: 4, arbitrary: hostileText.filter((text) => !text.includes('\u0000') && !text.startsWith('-')) },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '0',
      '-1',
      '1.5',
      '10',
      'zero',
      '1e3',
      '99999999999999999999',
      '7d',
      '5',
      '0.01',
      'earliest',
      'latest',
      'middle',
      'open',
      'bogus',
      '{"a":1}',
      '{"a":',
      'null',
      'x=y',
      'noequals',
      './no/such/module.js',
      'package.json',
      '42',
    ),
  },
);
const argv = fc
  .tuple(fc.constantFrom(...commands), fc.array(fc.oneof(fc.constantFrom(...flags), value), { maxLength: 8 }))
  // A tail that runs waits for its timeout: keep it short (a later --timeout wins).
  .map(([command, rest]) => (command[0] === 'tail' ? [...command, ...rest, '--timeout', '0.05'] : [...command, ...rest]));

describe('postbox CLI under bad input', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('answers any arguments with a result, or one error line and a non-zero exit; usage errors exit 2', async () => {
    const codes = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(argv, async (args) => {
        const run = await runInProcess(args, { DATABASE_URL: database.url });
        const where = JSON.stringify(args);
        codes.set(run.code, (codes.get(run.code) ?? 0) + 1);
        expect([0, 1, 2], where).toContain(run.code);
        if (run.code === 0) return;
        // `postbox` and `postbox --` name no command: the command list, then one error line.
        if (args.every((arg) => arg === '--')) {
          expect(run.code, where).toBe(2);
          expect(lines(run.stderr).at(-1), where).toMatch(/^postbox: POSTBOX_ERR_USAGE: A command is required/);
          return;
        }
        expectUserError(run, where);
        if (run.code === 2) expect(run.stderr, where).toMatch(/^postbox: POSTBOX_ERR_USAGE: /);
      }),
      propertyRuns(150),
    );
    // Both outcomes were reached, so the arguments did get past the parser.
    expect(codes.get(0) ?? 0).toBeGreaterThan(0);
    expect((codes.get(1) ?? 0) + (codes.get(2) ?? 0)).toBeGreaterThan(0);
  });

  it('names a bad DATABASE_URL, TIMESCALE_URI or --database-url, exits 1, and never shows its password', async () => {
    const server = new URL(serverUrl);
    const at = (path: string, host = server.host, user = 'postgres') => `postgres://${user}:${password}@${host}${path}`;
    const cases: [string, Record<string, string>, string[], RegExp][] = [
      [
        'malformed port',
        { DATABASE_URL: at('/db', '127.0.0.1:notaport') },
        ['status'],
        /POSTBOX_ERR_CONFIG: DATABASE_URL is not a valid URL/,
      ],
      ['not a URL', { DATABASE_URL: `host=127.0.0.1 password=${password}` }, ['status'], /DATABASE_URL must start with postgres:\/\//],
      ['wrong scheme', { DATABASE_URL: `mysql://root:${password}@127.0.0.1/x` }, ['status'], /DATABASE_URL must start with postgres:\/\//],
      [
        'a slash in the password',
        { DATABASE_URL: `postgres://app:ab/${password}@127.0.0.1/x` },
        ['status'],
        /DATABASE_URL is not a valid URL/,
      ],
      [
        'a hash in the password',
        { DATABASE_URL: `postgres://app:${password}#x@127.0.0.1/x` },
        ['status'],
        /DATABASE_URL is not a valid URL/,
      ],
      [
        'unreachable port',
        { DATABASE_URL: at('/postgres', '127.0.0.1:1') },
        ['status'],
        /POSTBOX_ERR_CONNECTION: Cannot connect .*ECONNREFUSED/,
      ],
      ['unknown host', { DATABASE_URL: at('/postgres', 'no-such-host.invalid') }, ['status'], /POSTBOX_ERR_CONNECTION: .*ENOTFOUND/],
      [
        'wrong database',
        { DATABASE_URL: at('/postbox_no_such_database') },
        ['migrate'],
        /database "postbox_no_such_database" does not exist/,
      ],
      ['wrong user', { DATABASE_URL: at('/postgres', server.host, 'no_such_role') }, ['status'], /role "no_such_role" does not exist/],
      ['an @ in the user name', { DATABASE_URL: at('/postgres', server.host, 'us@er') }, ['status'], /role "us@er" does not exist/],
      ['bad TIMESCALE_URI', { TIMESCALE_URI: at('/db', '127.0.0.1:99999') }, ['status'], /TIMESCALE_URI is not a valid URL/],
      [
        'bad --database-url',
        {},
        ['status', '--database-url', `postgresql://app:${password}@127.0.0.1:bad/x`],
        /--database-url must be a postgres:\/\/ or postgresql:\/\/ URL/,
      ],
      ['unreachable --database-url', {}, ['status', `--database-url=${at('/x', '127.0.0.1:1')}`], /ECONNREFUSED/],
    ];
    for (const [name, env, args, expected] of cases) {
      const run = await runInProcess(args, env);
      expectUserError(run, name);
      expect(run.code, name).toBe(1);
      expect(run.stderr, name).toMatch(expected);
      expect(run.stdout + run.stderr, name).not.toContain(password);
      expect(run.stdout + run.stderr, name).not.toContain(encodeURIComponent(password));
    }
  });

  it('exits non-zero from the real bin with the same one line, and no stack trace', async () => {
    const [badFlag, badUrl, noCommand] = await Promise.all([
      cli(['tail', '--topic', 't', '--group', 'g', '--timeout', 'soon'], { DATABASE_URL: database.url }),
      cli(['status'], { DATABASE_URL: `postgres://app:ab/${password}@127.0.0.1/x` }),
      cli([], { DATABASE_URL: database.url }),
    ]);
    expectUserError(badFlag, 'bad flag');
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/^postbox: POSTBOX_ERR_USAGE: option '--timeout <seconds>' argument 'soon' is invalid/);
    expectUserError(badUrl, 'bad URL');
    expect(badUrl.code).toBe(1);
    expect(badUrl.stderr).not.toContain(password);
    // Without a command the list of commands comes first, then the one error line.
    expect(noCommand.code).toBe(2);
    expect(noCommand.stdout).toBe('');
    expect(noCommand.stderr).toContain('Commands:');
    expect(lines(noCommand.stderr).at(-1)).toMatch(/^postbox: POSTBOX_ERR_USAGE: A command is required/);
    expect(noCommand.stderr).not.toMatch(/\n\s+at /);
  });
});
