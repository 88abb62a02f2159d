import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { errorCodes } from '../src/errors/codes.js';

/**
 * What this test uses of tools/error-table.ts. That file lies outside this package's TypeScript
 * project (its rootDir), so it is imported by path and described here.
 */
interface ErrorTableGenerator {
  repositoryRoot: string;
  outputPath: string;
  regenerateCommand: string;
  scanCodeUses(): Map<string, { files: Set<string> }>;
  renderErrorTable(input?: { uses?: ReadonlyMap<string, unknown> }): string;
}

const generator: ErrorTableGenerator = await import(fileURLToPath(new URL('../../../tools/error-table.ts', import.meta.url)));

describe('error codes', () => {
  const uses = generator.scanCodeUses();

  it('declares every POSTBOX_ERR_ code that the source or the migrations use', () => {
    const undeclared = [...uses]
      .filter(([code]) => !Object.hasOwn(errorCodes, code))
      .map(([code, use]) => `${code} (in ${[...use.files].join(', ')})`);
    expect(undeclared, 'add these codes to errorCodes in packages/postbox/src/errors/codes.ts').toEqual([]);
  });

  it('gives every code a summary', () => {
    const blank = Object.entries(errorCodes)
      .filter(([, entry]) => entry.summary.trim() === '')
      .map(([code]) => code);
    expect(blank, 'write a summary for these codes in packages/postbox/src/errors/codes.ts').toEqual([]);
  });

  it(`has ${generator.outputPath} as the generator writes it now`, () => {
    const written = readFileSync(join(generator.repositoryRoot, generator.outputPath), 'utf8');
    const expected = generator.renderErrorTable({ uses });
    expect(written, `${generator.outputPath} is out of date: run \`${generator.regenerateCommand}\``).toBe(expected);
  });
});
