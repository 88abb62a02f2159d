import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));
const root = fileURLToPath(new URL('../../../../', import.meta.url));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the real bin as a child process; the database comes only from `env`. */
export function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const { DATABASE_URL: _url, TIMESCALE_URI: _uri, POSTBOX_DATA_DIR: _dir, ...inherited } = process.env;
  const started = Date.now();
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', bin, ...args], {
    cwd: root,
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += String(chunk);
  });
  child.stderr.on('data', (chunk) => {
    stderr += String(chunk);
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}
