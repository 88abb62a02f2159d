/** Environment of the chaos process entry points: a missing variable stops the process with its name. */
export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} must be set`);
  return value;
}

export function numberEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number (got ${JSON.stringify(raw)})`);
  return value;
}

/** One line on stdout: the parent waits for these ("standby", "active", "stopped"). */
export function announce(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Announces `line` once check() is true, looking every 10 ms. */
export function announceWhen(check: () => boolean, line: string): void {
  const timer = setInterval(() => {
    if (check()) {
      clearInterval(timer);
      announce(line);
    }
  }, 10);
  timer.unref();
}

/**
 * Exits at once (code 2) when the parent process is gone, so that a chaos run that dies leaves no
 * process behind that keeps retrying against a dropped database.
 */
export function exitWithParent(): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) process.exit(2);
  }, 1_000);
  timer.unref();
}
