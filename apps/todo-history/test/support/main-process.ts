import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const main = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

export interface MainProcess {
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr together. */
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts `npm start`'s entry point as a process of its own, with no database or OpenTelemetry settings but those in env. */
export function startMainProcess(env: Record<string, string>): MainProcess {
  const { DATABASE_URL: _url, TIMESCALE_URI: _uri, POSTBOX_DATA_DIR: _dir, ...rest } = process.env;
  const inherited = Object.fromEntries(Object.entries(rest).filter(([name]) => !name.startsWith('OTEL_')));
  const child = spawn(process.execPath, ['--conditions=postbox-source', '--import', 'tsx', main], {
    cwd: root,
    env: { ...inherited, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += String(chunk);
  });
  child.stderr?.on('data', (chunk) => {
    output += String(chunk);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}
