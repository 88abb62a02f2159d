import ts from 'typescript';
import { type Run, runToEnd } from './child.js';

export type { Run } from './child.js';

/** Helpers for package.test.ts: child processes outside the repository, and the README's first example as a plain .mjs file. */

// npm settings that say where packages come from: a child keeps them. Every other npm_* variable is
// npm script context (npm_config_local_prefix names the repository, for one) and would make npm in
// the temporary project act on the repository.
const registrySettings = /^npm_config_(cache|userconfig|globalconfig|registry|cafile|ca|strict_ssl|.*proxy)$/i;

/**
 * The environment of a fresh shell: no npm script context, no Node options or variables of the test
 * runner, and no database of the caller's (a child gets DATABASE_URL only from `extra`).
 */
export function plainEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(name) && !registrySettings.test(name)) continue;
    if (/^(VITEST|TINYPOOL)/.test(name)) continue;
    if (['INIT_CWD', 'NODE_OPTIONS', 'NODE_ENV', 'NODE_PATH', 'DATABASE_URL', 'TIMESCALE_URI', 'POSTBOX_DATA_DIR'].includes(name)) continue;
    env[name] = value;
  }
  return { ...env, ...extra };
}

/** Runs a command to its end in a fresh shell's environment (see plainEnv); never rejects on a non-zero exit. */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<Run> {
  return runToEnd(command, args, { cwd: options.cwd, env: plainEnv(options.env), timeoutMs: options.timeoutMs ?? 60_000 });
}

/** A run's whole story, for assertion messages. */
export function story(result: Run): string {
  return `${result.command} (in ${result.ms} ms, exit ${result.code})\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

export interface ReadmeExample {
  /** The Markdown line of the opening fence (1-based). */
  line: number;
  code: string;
  /** Hidden context from a `<!-- snippet: CODE -->` comment before the block ('' when none). */
  context: string;
}

/**
 * The first ts/typescript block of a Markdown file, with its hidden context, by the convention of
 * tools/doc-snippets (a snippet comment directly before the block, blank lines allowed between).
 */
export function firstTsBlock(markdown: string): ReadmeExample | undefined {
  const lines = markdown.split(/\r?\n/);
  let context: string | undefined;
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] as string;
    if (/^\s*<!--\s*snippet\b/.test(line)) {
      let end = index;
      while (end < lines.length && !(lines[end] as string).includes('-->')) end++;
      const comment = lines.slice(index, end + 1).join('\n');
      context = comment.replace(/^\s*<!--\s*snippet(\s+continues)?\s*:?/, '').replace(/-->\s*$/, '');
      index = end;
      continue;
    }
    const fence = /^\s*(`{3,})\s*(\S*)/.exec(line);
    if (!fence) {
      if (line.trim() !== '') context = undefined;
      continue;
    }
    const close = new RegExp(`^\\s*\`{${(fence[1] as string).length},}\\s*$`);
    let end = index + 1;
    while (end < lines.length && !close.test(lines[end] as string)) end++;
    const language = (fence[2] ?? '').toLowerCase();
    if (language === 'ts' || language === 'typescript') {
      return { line: index + 1, code: lines.slice(index + 1, end).join('\n'), context: context ?? '' };
    }
    context = undefined;
    index = end;
  }
  return undefined;
}

function isDeclared(statement: ts.Statement): boolean {
  return ts.canHaveModifiers(statement) && (ts.getModifiers(statement) ?? []).some((m) => m.kind === ts.SyntaxKind.DeclareKeyword);
}

/**
 * The example as plain JavaScript: each name its hidden context declares (`declare const orderId:
 * string;`) becomes a real constant with the value `values` gives it (a JavaScript expression), other
 * hidden context is kept, and TypeScript's types are stripped by ts.transpileModule.
 */
export function exampleAsJavaScript(example: ReadmeExample, values: Readonly<Record<string, string>>): string {
  const context = ts.createSourceFile('context.ts', example.context, ts.ScriptTarget.ES2022, true);
  const real: string[] = [];
  for (const statement of context.statements) {
    if (!isDeclared(statement)) {
      real.push(statement.getText(context));
      continue;
    }
    const names = ts.isVariableStatement(statement)
      ? statement.declarationList.declarations.map((declaration) => declaration.name.getText(context))
      : (ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement)) && statement.name
        ? [statement.name.text]
        : [];
    if (names.length === 0)
      throw new Error(`README.md:${example.line}: cannot give a value to hidden context ${statement.getText(context)}`);
    for (const name of names) {
      const value = values[name];
      if (value === undefined) {
        throw new Error(
          `README.md:${example.line}: the example's hidden context declares ${name}; give it a real value in package.test.ts`,
        );
      }
      real.push(`const ${name} = ${value};`);
    }
  }
  const source = `${real.join('\n')}\n${example.code}\n`;
  const output = ts.transpileModule(source, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
    reportDiagnostics: true,
    fileName: 'readme-example.ts',
  });
  const problems = (output.diagnostics ?? []).map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
  if (problems.length > 0) throw new Error(`README.md:${example.line}: the example does not transpile: ${problems.join('; ')}`);
  return output.outputText;
}
