import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runToEnd } from './support/child.js';

// The documentation check (tools/doc-snippets) type-checks every TypeScript block of README.md and
// docs/ against the package. It runs as a child process, as CI and people run it.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const check = join(root, 'tools', 'doc-snippets', 'check.ts');

interface CheckRun {
  code: number | null;
  lines: string[];
  stderr: string;
}

async function runCheck(args: readonly string[]): Promise<CheckRun> {
  const { code, stdout, stderr } = await runToEnd(process.execPath, ['--import', 'tsx', check, ...args], { cwd: root });
  return { code, lines: stdout.split('\n').filter((line) => line !== ''), stderr };
}

const fence = '```';

/** A guide with one mistake of each kind the check must catch, at known lines. */
const brokenGuide = [
  '# Guide', // 1
  '',
  `${fence}ts`, // 3
  "const count: number = 'three';", // 4: TS2322
  fence,
  '',
  "<!-- snippet: declare const postbox: import('postbox').Postbox; -->", // 7
  `${fence}ts`,
  "await postbox.publish({ topic: 'orders', payload: {} });", // 9: no type, TS2345 against the real API
  fence,
  '',
  '<!-- snippet continues -->', // 12
  `${fence}typescript`,
  'const total: string = count;', // 14: continues line 8's block, which has no count: TS2304
  fence,
  '',
  `${fence}js`, // 17: a language that is neither checked nor allowed
  "console.log('skipped?');",
  fence,
  '',
  '<!-- snippet: declare const lonely: string; -->', // 21: hidden context with no ts block after it
  'Some text.',
  '',
  `${fence}json`, // 24: does not parse
  '{ "broken": }',
  fence,
  '',
].join('\n');

describe.concurrent('documentation snippets', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('type-check: every TypeScript block of README.md and docs/ compiles against the package', async () => {
    const result = await runCheck([]);
    // On failure the assertion prints the list: `docs/router.md:42: error TS2304: ...`.
    expect(result.lines, result.stderr).toEqual([]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/doc-snippets: [1-9]\d* TypeScript blocks type-checked/);
  }, 120_000);

  it('reports broken snippets, stray languages and orphan context at their Markdown lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postbox-doc-snippets-'));
    dirs.push(dir);
    mkdirSync(join(dir, 'docs'));
    writeFileSync(join(dir, 'docs', 'guide.md'), brokenGuide);

    const result = await runCheck(['--root', dir]);

    expect(result.code).toBe(1);
    expect(result.lines).toHaveLength(6);
    const [assignment, apiMisuse, continued, language, orphan, json] = result.lines;
    expect(assignment).toBe("docs/guide.md:4: error TS2322: Type 'string' is not assignable to type 'number'.");
    expect(apiMisuse).toMatch(/^docs\/guide\.md:9: error TS2345: .*OutgoingMessage/);
    expect(continued).toBe("docs/guide.md:14: error TS2304: Cannot find name 'count'.");
    expect(language).toBe('docs/guide.md:17: error: a code block must be ts, typescript, sh, sql, json or text (got "js")');
    expect(orphan).toBe('docs/guide.md:21: error: snippet comment is not followed by a ts block');
    expect(json).toMatch(/^docs\/guide\.md:24: error: json block does not parse: /);
    expect(result.stderr).toMatch(/3 TypeScript blocks type-checked, 2 other blocks, in 1 files .*: 6 errors/);
  }, 120_000);
});
