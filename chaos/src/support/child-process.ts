import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root: child processes run from here, as `npm start` does. */
export const repositoryRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** A process entry point of chaos/src/processes, by file name. */
export function processEntry(name: string): string {
  return fileURLToPath(new URL(`../processes/${name}`, import.meta.url));
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** performance.now() in the parent when the exit was seen. */
  at: number;
}

const keptOutputChars = 8_000;

/** A TypeScript process started with tsx: the lines it printed, and the tail of its output for diagnostics. */
export class ChildHandle {
  readonly exited: Promise<ExitStatus>;
  private readonly lines = new Set<string>();
  private readonly waiters: { matches: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  private tail = '';
  private exit: ExitStatus | undefined;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    let pending = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      this.keep(chunk);
      pending += chunk.toString();
      const complete = pending.split('\n');
      pending = complete.pop() ?? '';
      for (const line of complete) this.seeLine(line);
    });
    child.stderr?.on('data', (chunk: Buffer) => this.keep(chunk));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal, at: performance.now() };
        resolve(this.exit);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** The last few thousand characters the process wrote (stdout and stderr), for error messages. */
  get outputTail(): string {
    return this.tail;
  }

  hasPrinted(line: string): boolean {
    return this.lines.has(line);
  }

  /** Resolves once the process has printed this exact line (now or earlier); rejects if it exits or the time passes first. */
  async waitForLine(line: string, timeoutMs: number): Promise<void> {
    await this.waitForMatch(line, timeoutMs);
  }

  /** The first line printed (now or earlier) that equals `pattern`, or matches it when it is a RegExp. */
  waitForMatch(pattern: string | RegExp, timeoutMs: number): Promise<string> {
    const matches = (line: string) => (typeof pattern === 'string' ? line === pattern : pattern.test(line));
    const earlier = [...this.lines].find(matches);
    if (earlier !== undefined) return Promise.resolve(earlier);
    return new Promise((resolve, reject) => {
      let settled = false;
      const waiter = {
        matches,
        resolve: (line: string) => {
          settled = true;
          clearTimeout(timer);
          resolve(line);
        },
      };
      const fail = (reason: string) => {
        if (settled) return;
        settled = true;
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new Error(`${this.name} ${reason} before printing ${String(pattern)}; output: ${this.tail.slice(-2_000)}`));
      };
      const timer = setTimeout(() => fail(`did not print it within ${timeoutMs} ms`), timeoutMs);
      this.waiters.push(waiter);
      this.exited.then((status) => {
        clearTimeout(timer);
        fail(`exited (code ${status.code}, signal ${status.signal})`);
      });
    });
  }

  /** Sends a signal; false when the process had already exited. */
  signal(signal: NodeJS.Signals): boolean {
    if (!this.running) return false;
    return this.child.kill(signal);
  }

  /** SIGKILL, then waits for the exit. */
  async killHard(): Promise<ExitStatus> {
    this.signal('SIGKILL');
    return this.exited;
  }

  private keep(chunk: Buffer): void {
    this.tail = (this.tail + chunk.toString()).slice(-keptOutputChars);
  }

  private seeLine(line: string): void {
    this.lines.add(line);
    for (const waiter of this.waiters.filter((w) => w.matches(line))) {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve(line);
    }
  }
}

/**
 * Starts TypeScript entry points as processes of their own (`node --conditions=postbox-source --import tsx`)
 * and remembers them, so that a scenario that fails half-way leaves none behind.
 */
export class ProcessGroup {
  private readonly started = new Set<ChildHandle>();

  constructor() {
    // If this process ends without cleaning up, its children go with it.
    process.once('exit', () => {
      for (const handle of this.started) handle.signal('SIGKILL');
    });
  }

  /** env is added to this process's environment; a variable set to undefined is removed. */
  start(name: string, file: string, env: Record<string, string | undefined>): ChildHandle {
    const merged: Record<string, string | undefined> = { ...process.env, ...env };
    for (const [key, value] of Object.entries(merged)) if (value === undefined) delete merged[key];
    const child = spawn(process.execPath, ['--conditions=postbox-source', '--import', 'tsx', file], {
      cwd: repositoryRoot,
      env: merged,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const handle = new ChildHandle(name, child);
    this.started.add(handle);
    handle.exited.then(() => this.started.delete(handle));
    return handle;
  }

  /** Kills every process still running and waits for them to exit. */
  async killAll(): Promise<void> {
    await Promise.all([...this.started].map((handle) => handle.killHard()));
  }
}
