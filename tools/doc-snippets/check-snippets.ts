/**
 * Type-checks every ```ts / ```typescript block of README.md and docs/**\/*.md against the package,
 * in one TypeScript program. Each block is a module of its own, so blocks never see each other's
 * names. `postbox`, `postbox/kafka`, `postbox/ops` and `postbox/testing` resolve through the
 * workspace with the `postbox-source` condition (tsconfig.base.json), so nothing needs to be built first.
 * Errors are reported at the Markdown file and line: `docs/consumer-groups.md:42: error TS2304: ...`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { type CodeBlock, type Lines, parseMarkdown } from './markdown.js';

/** The repository root: the package resolution and the compiler settings come from here. */
export const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface CheckOptions {
  /** Where README.md and docs/ are read from; the repository root by default. */
  root?: string;
  /** Markdown files to check, relative to root; README.md and docs/**\/*.md by default. */
  files?: readonly string[];
}

export interface CheckResult {
  /** One line per problem, `file:line: error ...`, in file and line order. */
  errors: string[];
  files: number;
  /** ts blocks type-checked. */
  checked: number;
  /** sh, sql, json and text blocks (not type-checked). */
  unchecked: number;
  ms: number;
}

/** The READMEs users read (the repository's and the published package's) and every Markdown file under docs/, relative to root, sorted. */
export function documentationFiles(root: string): string[] {
  const found: string[] = [];
  if (existsSync(join(root, 'README.md'))) found.push('README.md');
  if (existsSync(join(root, 'packages/postbox/README.md'))) found.push('packages/postbox/README.md');
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && entry.name.endsWith('.md')) found.push(relative(root, path).split(sep).join('/'));
    }
  };
  walk(join(root, 'docs'));
  return found.sort((a, b) => (a === 'README.md' ? -1 : b === 'README.md' ? 1 : a.localeCompare(b)));
}

interface Module {
  /** The virtual file name the program sees. */
  fileName: string;
  markdown: string;
  text: string;
  /** The Markdown line of each line of text. */
  mdLines: number[];
  /** The first line of text that belongs to this block (earlier lines come from the block it continues). */
  ownFrom: number;
}

function append(target: Lines, source: Lines): void {
  target.text.push(...source.text);
  target.mdLines.push(...source.mdLines);
}

/** The project's strict settings, with what the check itself needs on top. */
function compilerOptions(): ts.CompilerOptions {
  const configPath = join(repositoryRoot, 'tsconfig.base.json');
  const config = ts.readConfigFile(configPath, (path) => ts.sys.readFile(path));
  if (config.error) throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, repositoryRoot, undefined, configPath);
  return {
    ...parsed.options,
    noEmit: true,
    // Every block is a module, even one without import or export, so blocks never share names.
    moduleDetection: ts.ModuleDetectionKind.Force,
    // Snippets show a step, not a whole program: a name declared and not used is fine.
    noUnusedLocals: false,
    noUnusedParameters: false,
    allowUnreachableCode: true,
  };
}

function modulesOf(markdown: string, blocks: readonly CodeBlock[], snippetDir: string): { modules: Module[]; errors: string[] } {
  const modules: Module[] = [];
  const errors: string[] = [];
  let previous: Module | undefined;
  for (const block of blocks) {
    if (block.language !== 'ts' && block.language !== 'typescript') continue;
    const lines: Lines = { text: [], mdLines: [] };
    let ownFrom = 0;
    if (block.continues) {
      if (!previous) {
        errors.push(`${markdown}:${block.fenceLine}: error: the block says it continues, but no ts block comes before it in this file`);
      } else {
        lines.text.push(...previous.text.split('\n'));
        lines.mdLines.push(...previous.mdLines);
        ownFrom = lines.text.length;
      }
    }
    append(lines, block.context);
    append(lines, block.code);
    const name = `${markdown.replace(/[^A-Za-z0-9]+/g, '_')}_L${block.fenceLine}.ts`;
    const module: Module = {
      fileName: join(snippetDir, name).split(sep).join('/'),
      markdown,
      text: lines.text.join('\n'),
      mdLines: lines.mdLines,
      ownFrom,
    };
    modules.push(module);
    previous = module;
  }
  return { modules, errors };
}

function format(diagnostic: ts.Diagnostic): string {
  return `error TS${diagnostic.code}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ')}`;
}

export function checkSnippets(options: CheckOptions = {}): CheckResult {
  const started = performance.now();
  const root = resolve(options.root ?? repositoryRoot);
  const files = options.files ?? documentationFiles(root);
  // Virtual files live inside the repository (never written to disk), so `postbox` resolves through
  // its node_modules and the root package.json makes them ES modules.
  const snippetDir = join(repositoryRoot, 'tools', 'doc-snippets', '.snippets');
  const errors: { file: string; line: number; text: string }[] = [];
  const modules: Module[] = [];
  let unchecked = 0;

  for (const file of files) {
    const parsed = parseMarkdown(readFileSync(join(root, file), 'utf8'));
    for (const problem of parsed.problems)
      errors.push({ file, line: problem.line, text: `${file}:${problem.line}: error: ${problem.message}` });
    unchecked += parsed.blocks.filter((block) => block.language !== 'ts' && block.language !== 'typescript').length;
    const built = modulesOf(file, parsed.blocks, snippetDir);
    for (const text of built.errors) errors.push({ file, line: Number(/:(\d+):/.exec(text)?.[1] ?? 0), text });
    modules.push(...built.modules);
  }

  if (modules.length > 0) {
    const options = compilerOptions();
    const byName = new Map(modules.map((module) => [module.fileName, module]));
    const host = ts.createCompilerHost(options, true);
    const { getSourceFile, fileExists, readFile } = host;
    host.fileExists = (fileName) => byName.has(fileName) || fileExists.call(host, fileName);
    host.readFile = (fileName) => byName.get(fileName)?.text ?? readFile.call(host, fileName);
    host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
      const module = byName.get(fileName);
      if (module) return ts.createSourceFile(fileName, module.text, languageVersion, true);
      return getSourceFile.call(host, fileName, languageVersion, onError, shouldCreate);
    };
    const program = ts.createProgram({ rootNames: [...byName.keys()], options, host });
    for (const diagnostic of [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()]) {
      errors.push({ file: '', line: 0, text: `tools/doc-snippets: ${format(diagnostic)}` });
    }
    for (const module of modules) {
      const source = program.getSourceFile(module.fileName);
      if (!source) {
        errors.push({ file: module.markdown, line: 0, text: `${module.markdown}: error: ${module.fileName} is missing from the program` });
        continue;
      }
      for (const diagnostic of [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]) {
        const at = source.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line;
        // Lines of the block this one continues were reported with that block.
        if (at < module.ownFrom) continue;
        const line = module.mdLines[at] ?? module.mdLines.at(-1) ?? 0;
        errors.push({ file: module.markdown, line, text: `${module.markdown}:${line}: ${format(diagnostic)}` });
      }
    }
  }

  const order = new Map(files.map((file, index) => [file, index]));
  errors.sort((a, b) => (order.get(a.file) ?? -1) - (order.get(b.file) ?? -1) || a.line - b.line);
  return {
    errors: errors.map((error) => error.text),
    files: files.length,
    checked: modules.length,
    unchecked,
    ms: Math.round(performance.now() - started),
  };
}
