import { fileURLToPath } from 'node:url';
import { type Run, runToEnd } from './child.js';

export type { Run } from './child.js';

const bin = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));
const root = fileURLToPath(new URL('../../../../', import.meta.url));

/** Runs the real bin as a child process; the database comes only from `env`. */
export function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const { DATABASE_URL: _url, TIMESCALE_URI: _uri, POSTBOX_DATA_DIR: _dir, ...inherited } = process.env;
  return runToEnd(process.execPath, ['--conditions=postbox-source', '--import', 'tsx', bin, ...args], {
    cwd: root,
    env: { ...inherited, ...env },
  });
}

export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}
