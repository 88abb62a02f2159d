import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../../', import.meta.url));

/** Starts a TypeScript file of the test tree as a process of its own. */
export function spawnTs(file: string, env: Record<string, string>): ChildProcess {
  return spawn(
    process.execPath,
    ['--conditions=postbox-source', '--import', 'tsx', fileURLToPath(new URL(`../${file}`, import.meta.url))],
    {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
}

/** Resolves once the child prints a line equal to `line`; rejects if it exits first. */
export function waitForLine(child: ChildProcess, line: string, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    let errors = '';
    const timer = setTimeout(() => reject(new Error(`child did not print ${line} in ${timeoutMs} ms: ${errors}`)), timeoutMs);
    child.stderr?.on('data', (chunk) => {
      errors += String(chunk);
    });
    child.stdout?.on('data', (chunk) => {
      buffer += String(chunk);
      if (buffer.split('\n').includes(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited with ${code} before printing ${line}: ${errors}`));
    });
  });
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** What a process printed and how it ended. */
export interface Run {
  command: string;
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs a command to its end, collecting what it prints; kills it after timeoutMs. Never rejects on a
 * non-zero exit: the caller asserts on the code.
 */
export function runToEnd(
  command: string,
  args: readonly string[],
  options: Pick<SpawnOptions, 'cwd' | 'env'> & { timeoutMs?: number },
): Promise<Run> {
  const started = Date.now();
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk) => {
    stdout += String(chunk);
  });
  child.stderr?.on('data', (chunk) => {
    stderr += String(chunk);
  });
  const timer = setTimeout(() => {
    stderr += `\n[killed after ${options.timeoutMs} ms]`;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 120_000);
  return new Promise((resolve, reject) => {
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ command: [command, ...args].join(' '), code, stdout, stderr, ms: Date.now() - started });
    });
  });
}
