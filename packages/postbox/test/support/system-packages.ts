import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** A Debian package some tests need, and the files that show it is there. */
export interface SystemPackage {
  /** What `apt-get install` takes. */
  package: string;
  /** Which tests need it, for the error message. */
  neededBy: string;
  /** Files that must exist (absolute paths), or commands that must be on PATH (bare names). */
  provides: readonly string[];
}

/** Everything the tests need from the operating system besides Node.js and the PostgreSQL server. */
export const systemPackages: readonly SystemPackage[] = [
  {
    package: 'librdkafka-dev',
    neededBy: "the Kafka tests, whose broker is librdkafka's mock cluster",
    provides: ['/usr/include/librdkafka/rdkafka.h', '/usr/include/librdkafka/rdkafka_mock.h'],
  },
  {
    package: 'gcc',
    neededBy: 'the Kafka tests, which compile tools/kafka-mock/mock-cluster.c',
    provides: ['cc'],
  },
  {
    package: 'libc6-dev',
    neededBy: 'the Kafka tests, which compile tools/kafka-mock/mock-cluster.c',
    provides: ['/usr/include/stdio.h'],
  },
  {
    package: 'chromium',
    neededBy: 'the todo-history page test, which drives /usr/bin/chromium',
    provides: ['/usr/bin/chromium'],
  },
];

/** The kernel lock that keeps two test runs on one machine from installing at the same time. */
export const installLockPath = '/var/lock/postbox-test-system-packages.lock';
const lockWaitSeconds = 900;

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && isExecutable(join(dir, command)));
}

function isPresent(item: SystemPackage): boolean {
  return item.provides.every((thing) => (thing.startsWith('/') ? existsSync(thing) : onPath(thing)));
}

/** The packages whose files are missing on this machine. */
export function missingSystemPackages(packages: readonly SystemPackage[] = systemPackages): SystemPackage[] {
  return packages.filter((item) => !isPresent(item));
}

export interface EnsureOptions {
  packages?: readonly SystemPackage[];
  /** Whether this process may run apt-get; by default, whether it runs as root. */
  root?: boolean;
  /** Whether apt-get is available; by default, whether it is on PATH. */
  apt?: boolean;
}

/** The message of every failure: what is missing, for what, and the one command that fixes it. */
function failure(missing: readonly SystemPackage[], root: boolean, reason: string): Error {
  const names = missing.map((item) => item.package).join(' ');
  const what = missing.map((item) => `${item.package} for ${item.neededBy}`).join('; ');
  const command = `${root ? '' : 'sudo '}apt-get install -y ${names}`;
  return new Error(`The tests need system packages that are missing: ${what}. ${reason}: ${command}`);
}

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: 'inherit', env });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/**
 * Takes the install lock with flock(1), which holds it while its stdin stays open. The kernel
 * releases it when the holder exits, so a crashed run never leaves a stale lock behind.
 */
async function takeInstallLock(): Promise<() => Promise<void>> {
  const args = ['--exclusive', '--wait', String(lockWaitSeconds), installLockPath, '-c', 'echo locked; cat'];
  const holder: ChildProcess = spawn('flock', args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const released = new Promise<number>((resolve) => holder.once('exit', (code) => resolve(code ?? 1)));
  let waiting: NodeJS.Timeout | undefined;
  // Resolves to null once the lock is held, or to flock's exit code when it gave up (1 after the wait).
  const locked = new Promise<number | null>((resolve, reject) => {
    holder.once('error', reject);
    holder.stdout?.once('data', () => resolve(null));
    void released.then(resolve);
    waiting = setTimeout(
      () => console.log(`Waiting for ${installLockPath}: another test run on this machine is installing system packages`),
      1_000,
    );
  });
  try {
    const gaveUp = await locked;
    if (gaveUp !== null) {
      throw new Error(`flock exited with code ${gaveUp} without taking ${installLockPath} within ${lockWaitSeconds} seconds`);
    }
  } finally {
    clearTimeout(waiting);
  }
  return async () => {
    holder.stdin?.end();
    await released;
  };
}

/**
 * Makes sure the packages the tests need are installed. When some are missing and this process is
 * root with apt-get, installs them (one run at a time per machine); otherwise throws one error naming
 * the command to run. It never lets a test skip for want of a package.
 */
export async function ensureSystemPackages(options: EnsureOptions = {}): Promise<void> {
  const packages = options.packages ?? systemPackages;
  const missing = missingSystemPackages(packages);
  if (missing.length === 0) return;
  const root = options.root ?? process.getuid?.() === 0;
  const apt = options.apt ?? onPath('apt-get');
  if (!apt) throw failure(missing, root, 'apt-get is not available on this machine; on Debian, run');
  if (!root) throw failure(missing, root, 'Installing them needs root; run');

  let release: () => Promise<void>;
  try {
    release = await takeInstallLock();
  } catch (error) {
    throw failure(missing, root, `Could not take the install lock (${error instanceof Error ? error.message : String(error)}); run`);
  }
  try {
    // Another run may have installed them while this one waited for the lock.
    const stillMissing = missingSystemPackages(packages);
    if (stillMissing.length === 0) return;
    const names = stillMissing.map((item) => item.package);
    console.log(`Installing the system packages the tests need: ${names.join(' ')}`);
    // apt-get waits up to the timeout for a dpkg lock that some other program holds, instead of failing.
    const lockTimeout = ['-o', `DPkg::Lock::Timeout=${lockWaitSeconds}`];
    const updated = await run('apt-get', [...lockTimeout, 'update']);
    if (updated !== 0) throw failure(stillMissing, root, `apt-get update failed (exit code ${updated}); run`);
    const noninteractive = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const installed = await run('apt-get', [...lockTimeout, 'install', '-y', ...names], noninteractive);
    if (installed !== 0) throw failure(stillMissing, root, `apt-get install failed (exit code ${installed}); run`);
    const after = missingSystemPackages(packages);
    if (after.length > 0) {
      const files = after.flatMap((item) => item.provides).join(', ');
      throw failure(after, root, `apt-get install succeeded but these are still missing: ${files}; check the packages, then run`);
    }
  } finally {
    await release();
  }
}
