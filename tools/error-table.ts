/**
 * Writes docs/errors.md: every error code of Postbox, from packages/postbox/src/errors/codes.ts, with
 * where it is raised (found by scanning the TypeScript source and the SQL migrations), and the codes
 * of the todo-history HTTP API.
 *
 * Run: npm run docs:errors
 * packages/postbox/test/error-codes.test.ts fails when docs/errors.md differs from what this writes.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiErrors } from '../apps/todo-history/src/errors.js';
import { errorCodes } from '../packages/postbox/src/errors/codes.js';

export const repositoryRoot = fileURLToPath(new URL('../', import.meta.url));
/** Where the table is written, relative to the repository root. */
export const outputPath = 'docs/errors.md';
export const regenerateCommand = 'npm run docs:errors';

const sourceDir = 'packages/postbox/src';
const migrationsDir = 'packages/postbox/migrations';
/** The file that declares the codes; a code written there only is not raised anywhere. */
const declarationFile = 'packages/postbox/src/errors/codes.ts';
const codePattern = /POSTBOX_ERR_[A-Z_]+/g;
/** A RAISE with a literal message, up to the end of the statement. */
const raisePattern = /raise\s+exception\s+'((?:[^']|'')*)'([^;]*);/gi;
const errcodePattern = /errcode\s*=\s*'([^']+)'/i;
const defaultSqlState = '22023';

/** Where one code string appears in the library's source and migrations. */
export interface CodeUse {
  /** Files that contain the string, relative to the repository root. */
  files: Set<string>;
  typescript: boolean;
  sql: boolean;
  /** The SQLSTATEs of the SQL RAISE statements whose message starts with or holds the code. */
  sqlStates: Set<string>;
}

function filesUnder(root: string, dir: string, extension: string): string[] {
  let names: string[];
  try {
    names = readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return names
    .filter((name) => name.endsWith(extension))
    .map((name) => join(dir, name).split('\\').join('/'))
    .sort();
}

/** Every POSTBOX_ERR_ string in the library's TypeScript source and SQL migrations, known or not. */
export function scanCodeUses(root: string = repositoryRoot): Map<string, CodeUse> {
  const uses = new Map<string, CodeUse>();
  const use = (code: string, file: string) => {
    let entry = uses.get(code);
    if (!entry) {
      entry = { files: new Set(), typescript: false, sql: false, sqlStates: new Set() };
      uses.set(code, entry);
    }
    entry.files.add(file);
    return entry;
  };
  for (const file of filesUnder(root, sourceDir, '.ts')) {
    const text = readFileSync(join(root, file), 'utf8');
    for (const [code] of text.matchAll(codePattern)) {
      const entry = use(code, file);
      if (file !== declarationFile) entry.typescript = true;
    }
  }
  for (const file of filesUnder(root, migrationsDir, '.sql')) {
    const text = readFileSync(join(root, file), 'utf8');
    for (const [code] of text.matchAll(codePattern)) use(code, file).sql = true;
    for (const [, message = '', rest = ''] of text.matchAll(raisePattern)) {
      // Without USING ERRCODE, RAISE EXCEPTION raises P0001 (raise_exception).
      const sqlState = errcodePattern.exec(rest)?.[1] ?? 'P0001';
      for (const [code] of message.matchAll(codePattern)) use(code, file).sqlStates.add(sqlState);
    }
  }
  return uses;
}

function origin(use: CodeUse | undefined): string {
  if (!use || (!use.typescript && !use.sql)) return 'declared, not raised';
  if (!use.sql) return 'TypeScript';
  // 22023 is what the SQL functions raise unless they say otherwise; the page's introduction says so.
  const states = [...use.sqlStates].filter((state) => state !== defaultSqlState).sort();
  const sql = states.length > 0 ? `SQL (SQLSTATE ${states.join(', ')})` : 'SQL';
  return use.typescript ? `${sql} and TypeScript` : sql;
}

const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

function table(header: string[], rows: string[][]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.map(cell).join(' | ')} |`),
  ];
}

export interface ErrorTableInput {
  codes?: Readonly<Record<string, { retriable: boolean; summary: string }>>;
  uses?: ReadonlyMap<string, CodeUse>;
  apiCodes?: Readonly<Record<string, number>>;
}

/** The Markdown of docs/errors.md, as the current source declares and raises the codes. */
export function renderErrorTable(input: ErrorTableInput = {}): string {
  const codes = input.codes ?? errorCodes;
  const uses = input.uses ?? scanCodeUses();
  const apiCodes = input.apiCodes ?? apiErrors;
  const codeRows = Object.entries(codes).map(([code, { retriable, summary }]) => [
    `\`${code}\``,
    retriable ? 'yes' : 'no',
    summary,
    origin(uses.get(code)),
  ]);
  const apiRows = Object.entries(apiCodes).map(([code, status]) => [`\`${code}\``, String(status)]);
  return [
    '# Error codes',
    '',
    `<!-- Generated by tools/error-table.ts from ${declarationFile}; run \`${regenerateCommand}\` after changing a code. -->`,
    '',
    'Every error Postbox raises for a caller is a class: `PostboxError` or one of its subclasses (`ValidationError`, `ConfigError`, `SchemaVersionError`, `LeaseLostError`, `HandlerError`, `DecodeError` and others). Each carries:',
    '',
    '- `code`: a stable string from the table below. Match on it, never on the message.',
    '- `message`: readable text that says what went wrong and, where it can, what to do.',
    '- `retriable`: whether the same operation may succeed when tried again. Retry logic should read only this flag.',
    '',
    "`isPostboxError(error)` tells whether a value is such an error; `isPostboxError(error, 'POSTBOX_ERR_CONCURRENCY')` also checks its code.",
    '',
    `The SQL functions the migrations install, such as \`postbox.publish\`, refuse bad arguments with the same codes, so a caller in psql or another language gets the same answer as the TypeScript API. They raise SQLSTATE \`${defaultSqlState}\` (invalid_parameter_value) with the code at the start of the message, for example \`POSTBOX_ERR_EMPTY_TOPIC: topic must be a non-empty string\`. Where a code is raised with another SQLSTATE, the table says which. Called from TypeScript, Postbox checks the same rules before the statement runs, or turns the refusal into the typed error with that code.`,
    '',
    '"Raised by" says where the code appears: in the TypeScript source of the library, in the SQL of its migrations, or both.',
    '',
    ...table(['Code', 'Retriable', 'What it means', 'Raised by'], codeRows),
    '',
    '## The todo-history HTTP API',
    '',
    'The reference app answers HTTP requests that fail with `{ "error": { "code", "message" } }` and a code of its own; apps/todo-history/README.md says what each means.',
    '',
    ...table(['Code', 'HTTP status'], apiRows),
    '',
  ].join('\n');
}

function main(): void {
  const target = join(repositoryRoot, outputPath);
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, renderErrorTable());
  console.log(`wrote ${relative(process.cwd(), target) || target}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
