import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleAsJavaScript, firstTsBlock, run, story } from './support/packed-package.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';

/**
 * The package as a user gets it: `npm pack` (whose prepack builds dist), checked by publint and
 * @arethetypeswrong/cli, installed into a temporary project outside the repository, and run there
 * with plain `node`, with no `postbox-source` condition, tsx or workspace in sight.
 */

const root = realpathSync(fileURLToPath(new URL('../../../', import.meta.url)));
const repoBin = (name: string) => join(root, 'node_modules', '.bin', name);
const npmQuick = ['--no-audit', '--no-fund', '--prefer-offline'];

interface Packed {
  filename: string;
  size: number;
  entryCount: number;
  files: { path: string }[];
}

interface ExampleOutput {
  consumed: { topic: string; type: string; key: string | null; payload: unknown };
  order: { amount: number } | undefined;
}

const orderId = `order-${randomUUID()}`;

/** Runs before the README's example: the `orders` table it writes to, which the README leaves to the reader. */
const exampleSetup = `// Setup: the orders table the example writes to, on the database the example will use.
{
  const { Postbox } = await import('postbox');
  const setup = await Postbox.fromEnv();
  await setup.db.query('create table if not exists orders (id text primary key, amount integer not null)');
  await setup.close();
}
`;

/**
 * Runs after the README's example. The example enqueues a message and prints nothing, and it leaves
 * Postbox open; so read the message back with a consumer group (the log's one way out), print what it
 * received and the committed order row as one JSON line, and close, so that the process exits 0.
 */
const exampleCheck = `
// Check: the message went through the log to a consumer; print it, then close.
{
  const consumed = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message consumed within 30 s')), 30_000);
    const consumer = postbox.consumer({
      group: 'package-test',
      topics: ['orders'],
      startFrom: 'earliest',
      handleMessage: async (message) => {
        if (message.key !== orderId) return;
        clearTimeout(timer);
        resolve({ topic: message.topic, type: message.type, key: message.key, payload: message.payload });
      },
    });
    consumer.start().catch(reject);
  });
  const { rows } = await postbox.db.query('select amount from orders where id = $1', [orderId]);
  console.log(JSON.stringify({ consumed, order: rows[0] }));
  await postbox.close();
}
`;

/** A process that does not end by itself fails instead of hanging the test. */
const exampleGuard = `setTimeout(() => {
  console.error('the example did not exit within 60 s');
  process.exit(3);
}, 60_000).unref();
`;

/** Records every module URL the ESM loader resolves, into the file named by `data.log`. */
const resolveHook = `import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) {
  log = data.log;
}
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(log, result.url + '\\n');
  return result;
}
`;

/**
 * Imports postbox, then uses embedded PGlite, and prints what was loaded after each step: the URLs
 * the resolve hook saw, plus the files in require.cache (CommonJS loaded by CommonJS).
 */
const loadProbe = `import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';

const log = new URL('./resolved.log', import.meta.url);
writeFileSync(log, '');
register('./resolve-hook.mjs', import.meta.url, { data: { log: log.pathname } });
const require = createRequire(import.meta.url);
const loaded = () => [
  ...new Set([
    ...readFileSync(log, 'utf8').split('\\n').filter((url) => url !== ''),
    ...Object.keys(require.cache).map((file) => pathToFileURL(file).href),
  ]),
];

const { Postbox } = await import('postbox');
const afterImport = loaded();
const postbox = await Postbox.create({ dataDir: 'memory' });
await postbox.publish({ topic: 'probe', type: 'probe', payload: {} });
await postbox.close();
console.log(JSON.stringify({ afterImport, afterUse: loaded() }));
`;

const byPackage = (urls: readonly string[], name: string) => urls.filter((url) => url.includes(`/node_modules/${name}/`));

// Generous timeouts: packing builds dist, the installs may go to the registry, and a fresh PGlite takes seconds to initialise.
describe.concurrent('the packed package, installed outside the repository', { timeout: 120_000 }, () => {
  let work: string;
  let tarball: string;
  let packed: Packed;
  /** postbox alone: proves the core needs neither kafkajs nor fastify. */
  let project: string;
  /** postbox and kafkajs. */
  let kafkaProject: string;
  /** postbox and fastify: the operations console. */
  let fastifyProject: string;
  let database: TestDatabase | undefined;

  const newProject = async (name: string, extra: string[]) => {
    const dir = join(work, name);
    mkdirSync(dir);
    for (const args of [
      ['init', '-y'],
      ['pkg', 'set', 'type=module'],
      ['install', tarball, ...extra, ...npmQuick],
    ]) {
      const result = await run('npm', args, { cwd: dir, timeoutMs: 120_000 });
      expect(result.code, story(result)).toBe(0);
    }
    return dir;
  };

  beforeAll(async () => {
    work = realpathSync(mkdtempSync(join(tmpdir(), 'postbox-package-')));
    // Inside the repository, node would find the workspace's node_modules by walking up.
    const fromRoot = relative(root, work);
    expect(fromRoot.startsWith('..') || isAbsolute(fromRoot), `${work} must be outside ${root}: set TMPDIR elsewhere`).toBe(true);

    const pack = await run('npm', ['pack', '-w', 'postbox', '--pack-destination', work, '--json'], { cwd: root, timeoutMs: 180_000 });
    expect(pack.code, story(pack)).toBe(0);
    [packed] = JSON.parse(pack.stdout) as [Packed];
    tarball = join(work, packed.filename);

    [project, kafkaProject, fastifyProject, database] = await Promise.all([
      newProject('core', []),
      newProject('with-kafkajs', ['kafkajs']),
      newProject('with-fastify', ['fastify']),
      createTestDatabase({ migrated: false }),
    ]);

    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    // The library's first example is the README's first TypeScript block; it must import postbox.
    const example = firstTsBlock(readme);
    if (!example) throw new Error('README.md has no ts block');
    expect(example.code, `README.md:${example.line}: the first ts block should be the library's first example`).toMatch(/from 'postbox'/);
    const body = exampleAsJavaScript(example, { orderId: JSON.stringify(orderId) });
    writeFileSync(
      join(project, 'readme-example.mjs'),
      `// README.md:${example.line}, made runnable by package.test.ts.\n${exampleGuard}\n${exampleSetup}\n${body}\n${exampleCheck}`,
    );
    writeFileSync(join(project, 'resolve-hook.mjs'), resolveHook);
    writeFileSync(join(project, 'load-probe.mjs'), loadProbe);
  }, 300_000);

  afterAll(async () => {
    await database?.drop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("holds the build, the sources, the migrations, the console's page, its README and licence, and nothing else", ({ expect }) => {
    const paths = packed.files.map((file) => file.path);
    expect(paths).toContain('package.json');
    expect(paths).toContain('dist/index.js');
    expect(paths).toContain('dist/index.d.ts');
    expect(paths).toContain('dist/cli/bin.js');
    expect(paths.filter((path) => path.startsWith('migrations/')).length).toBeGreaterThan(0);
    expect(paths).toEqual(expect.arrayContaining(['console/index.html', 'console/console.css', 'console/js/main.js', 'dist/ops.js']));
    expect(paths).toEqual(expect.arrayContaining(['README.md', 'LICENSE']));
    expect(
      paths.filter((path) => !/^(dist|src|migrations|console)\//.test(path) && !['package.json', 'README.md', 'LICENSE'].includes(path)),
    ).toEqual([]);
  });

  it('publint reports nothing (warnings count as errors)', async ({ expect }) => {
    const result = await run(repoBin('publint'), ['run', '--strict', tarball], { cwd: work, timeoutMs: 60_000 });
    expect(result.code, story(result)).toBe(0);
  });

  it('are the types wrong: every entry point resolves to JavaScript and types under node16 ESM and bundlers', async ({ expect }) => {
    // The profile esm-only: the package is ESM only on purpose ("type": "module", exports without a
    // require condition, Node 20.19 or later). The default profile, strict, would also fail it for
    // node10 resolution (which cannot read "exports") and for node16 from CommonJS (where a require of
    // ESM is all it can report); node16 would still do the latter. esm-only checks exactly what the
    // package promises: node16/nodenext from ESM, and bundlers. The types are the package's own, so
    // DefinitelyTyped is not consulted.
    const result = await run(
      repoBin('attw'),
      ['--profile', 'esm-only', '--no-definitely-typed', '--format', 'ascii', '--no-color', '--no-emoji', tarball],
      { cwd: work, timeoutMs: 90_000 },
    );
    expect(result.code, story(result)).toBe(0);
    for (const entry of ['postbox', 'postbox/kafka', 'postbox/ops', 'postbox/testing']) expect(result.stdout).toContain(`"${entry}"`);
  });

  it("runs the README's first example with plain node on embedded PGlite, its data inside the project", async ({ expect }) => {
    const result = await run(process.execPath, ['readme-example.mjs'], { cwd: project, timeoutMs: 90_000 });
    expect(result.code, story(result)).toBe(0);
    const output = JSON.parse(result.stdout.split('\n').find((line) => line.startsWith('{"consumed"')) ?? '') as ExampleOutput;
    expect(output).toEqual({
      consumed: { topic: 'orders', type: 'order.placed', key: orderId, payload: { orderId, amount: 120 } },
      order: { amount: 120 },
    });
    expect(existsSync(join(project, '.postbox-data'))).toBe(true);
  });

  it("runs the README's first example with plain node on PostgreSQL, after npx postbox migrate", async ({ expect }) => {
    const env = { DATABASE_URL: (database as TestDatabase).url };
    // --no: use the installed bin, never fetch a package called postbox.
    const migrate = await run('npx', ['--no', 'postbox', 'migrate'], { cwd: project, env, timeoutMs: 60_000 });
    expect(migrate.code, story(migrate)).toBe(0);
    expect(migrate.stdout).toMatch(/^Schema now at version \d+ on /m);

    const result = await run(process.execPath, ['readme-example.mjs'], { cwd: project, env, timeoutMs: 90_000 });
    expect(result.code, story(result)).toBe(0);
    const output = JSON.parse(result.stdout.split('\n').find((line) => line.startsWith('{"consumed"')) ?? '') as ExampleOutput;
    expect(output).toEqual({
      consumed: { topic: 'orders', type: 'order.placed', key: orderId, payload: { orderId, amount: 120 } },
      order: { amount: 120 },
    });

    const client = new pg.Client({ connectionString: env.DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query('select type, key from postbox.messages where topic = $1', ['orders']);
      expect(rows).toEqual([{ type: 'order.placed', key: orderId }]);
    } finally {
      await client.end();
    }
  });

  it('npx postbox migrate --print writes the schema as SQL', async ({ expect }) => {
    const result = await run('npx', ['--no', 'postbox', 'migrate', '--print'], { cwd: project, timeoutMs: 60_000 });
    expect(result.code, story(result)).toBe(0);
    expect(result.stdout).toContain('create table postbox.messages');
  });

  it('postbox/kafka without kafkajs fails with POSTBOX_ERR_MISSING_PEER, naming npm install kafkajs', async ({ expect }) => {
    const script = `try { await import('postbox/kafka'); console.log('loaded'); } catch (error) { console.log(JSON.stringify({ code: error.code, message: error.message })); }`;
    const result = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: project, timeoutMs: 30_000 });
    expect(result.code, story(result)).toBe(0);
    const failure = JSON.parse(result.stdout) as { code: string; message: string };
    expect(failure.code).toBe('POSTBOX_ERR_MISSING_PEER');
    expect(failure.message).toContain('npm install kafkajs');
  });

  it('postbox/kafka loads once kafkajs is installed beside postbox', async ({ expect }) => {
    const script = `const kafka = await import('postbox/kafka'); console.log(typeof kafka.createKafkaRelay, typeof kafka.kafkaSource);`;
    const result = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: kafkaProject, timeoutMs: 30_000 });
    expect(result.code, story(result)).toBe(0);
    expect(result.stdout.trim()).toBe('function function');
  });

  it('postbox/ops serves the console page, its files and its API once fastify is installed beside postbox', async ({ expect }) => {
    const script = `
      import Fastify from 'fastify';
      import { Postbox } from 'postbox';
      import { registerConsole } from 'postbox/ops';
      const postbox = await Postbox.create({ dataDir: 'memory' });
      const app = Fastify();
      await registerConsole(app, { postbox, sampler: false });
      const page = await app.inject('/ops/');
      const script = await app.inject('/ops/assets/js/main.js');
      const groups = await app.inject('/ops/api/groups');
      console.log(JSON.stringify({
        page: [page.statusCode, page.body.includes('<title>Postbox console</title>')],
        script: [script.statusCode, script.headers['content-type']],
        groups: [groups.statusCode, groups.json()],
      }));
      await app.close();
      await postbox.close();`;
    const result = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: fastifyProject, timeoutMs: 60_000 });
    expect(result.code, story(result)).toBe(0);
    expect(JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '')).toEqual({
      page: [200, true],
      script: [200, 'text/javascript; charset=utf-8'],
      groups: [200, []],
    });
  });

  it('npx postbox ui without fastify fails with POSTBOX_ERR_MISSING_PEER, naming npm install fastify', async ({ expect }) => {
    const result = await run('npx', ['--no', 'postbox', 'ui', '--port', '0'], { cwd: project, timeoutMs: 60_000 });
    expect(result.code, story(result)).toBe(1);
    expect(result.stderr).toMatch(/^postbox: POSTBOX_ERR_MISSING_PEER: .*npm install fastify/m);
  });

  it('importing postbox loads neither kafkajs, fastify, commander nor PGlite; using embedded PGlite loads PGlite', async ({ expect }) => {
    const result = await run(process.execPath, ['load-probe.mjs'], { cwd: project, timeoutMs: 60_000 });
    expect(result.code, story(result)).toBe(0);
    const { afterImport, afterUse } = JSON.parse(result.stdout) as { afterImport: string[]; afterUse: string[] };
    // The hook saw the package itself (so an empty list below means something).
    expect(byPackage(afterImport, 'postbox')).toContain(`file://${project}/node_modules/postbox/dist/index.js`);
    expect(byPackage(afterImport, 'pg').length).toBeGreaterThan(0);
    for (const name of ['kafkajs', 'fastify', 'commander', '@electric-sql/pglite']) expect(byPackage(afterImport, name), name).toEqual([]);
    expect(byPackage(afterUse, '@electric-sql/pglite').length).toBeGreaterThan(0);
    for (const name of ['kafkajs', 'fastify', 'commander']) expect(byPackage(afterUse, name), name).toEqual([]);
  });
});
