/**
 * The documentation check: type-checks every TypeScript block of README.md and docs/ against the
 * package. Run it from the repository root:
 *
 *     node --import tsx tools/doc-snippets/check.ts [--root DIR] [FILE.md ...]
 *
 * It prints one line per problem (`docs/consumer-groups.md:42: error TS2304: ...`) and exits 1 when
 * there is any, 0 otherwise. FILE arguments (relative to the root) limit the check to those files.
 */
import { checkSnippets } from './check-snippets.js';

function parseArgs(args: readonly string[]): { root?: string; files?: string[] } {
  const files: string[] = [];
  let root: string | undefined;
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] as string;
    if (arg === '--root') {
      root = args[++index];
      if (root === undefined) throw new Error('--root needs a directory');
    } else if (arg.startsWith('--root=')) root = arg.slice('--root='.length);
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write('usage: node --import tsx tools/doc-snippets/check.ts [--root DIR] [FILE.md ...]\n');
      process.exit(0);
    } else files.push(arg);
  }
  return { root, files: files.length > 0 ? files : undefined };
}

const result = checkSnippets(parseArgs(process.argv.slice(2)));
for (const error of result.errors) process.stdout.write(`${error}\n`);
const summary = `doc-snippets: ${result.checked} TypeScript blocks type-checked, ${result.unchecked} other blocks, in ${result.files} files (${(result.ms / 1000).toFixed(1)} s)`;
if (result.errors.length > 0) {
  process.stderr.write(`${summary}: ${result.errors.length} error${result.errors.length === 1 ? '' : 's'}\n`);
  process.exitCode = 1;
} else {
  process.stderr.write(`${summary}: no errors\n`);
}
