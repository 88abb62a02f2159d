import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const source = `${root}tools/kafka-mock/mock-cluster.c`;
const binaryDir = `${root}node_modules/.cache/postbox`;
const binary = `${binaryDir}/mock-cluster`;

/** Compiles the launcher against librdkafka (Debian's librdkafka-dev) when the binary is missing or stale. */
export function buildMockCluster(): string {
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return binary;
  mkdirSync(binaryDir, { recursive: true });
  const temporary = `${binary}.${process.pid}`;
  execFileSync('cc', ['-O2', '-Wall', '-o', temporary, source, '-lrdkafka'], { stdio: 'inherit' });
  renameSync(temporary, binary);
  return binary;
}

export interface MockCluster {
  /** The bootstrap address list, e.g. `127.0.0.1:40123`. */
  bootstrap: string;
  brokers: string[];
  createTopic(name: string, partitions: number): Promise<void>;
  /** Takes a broker down (-1: all of them), as in a broker outage. */
  down(brokerId?: number): Promise<void>;
  up(brokerId?: number): Promise<void>;
  /** Makes the next `count` requests of a Kafka API key fail with an error code. */
  fail(apiKey: number, errorCode: number, count: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts librdkafka's mock cluster, a real Kafka-protocol broker on loopback. */
export async function startMockCluster(brokers = 1): Promise<MockCluster> {
  const child: ChildProcess = spawn(buildMockCluster(), [String(brokers)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const nextLine = () => new Promise<string>((resolve) => waiting.push(resolve));
  const first = await nextLine();
  if (!first.startsWith('bootstrap ')) throw new Error(`mock cluster did not start: ${first}`);
  const bootstrap = first.slice('bootstrap '.length);
  let queue = Promise.resolve();
  const command = (text: string) => {
    const run = queue.then(async () => {
      const answer = nextLine();
      child.stdin?.write(`${text}\n`);
      const line = await answer;
      if (line !== 'ok') throw new Error(`mock cluster: ${text}: ${line}`);
    });
    queue = run.catch(() => undefined);
    return run;
  };
  return {
    bootstrap,
    brokers: bootstrap.split(','),
    createTopic: (name, partitions) => command(`topic ${name} ${partitions}`),
    down: (brokerId = -1) => command(`down ${brokerId}`),
    up: (brokerId = -1) => command(`up ${brokerId}`),
    fail: (apiKey, errorCode, count) => command(`fail ${apiKey} ${errorCode} ${count}`),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
