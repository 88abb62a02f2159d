import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { makeWorkerUtils } from 'graphile-worker';
import type pg from 'pg';
import PgBoss from 'pg-boss';
import { Postbox } from 'postbox';
import { type MachineCpu, machineCpu, machineCpuSince, ServerCpu } from './support/cpu.js';
import { calibrate } from './support/cpu-work.js';
import { type BenchDatabase, connect, createDatabase } from './support/database.js';
import { chunks } from './support/messages.js';
import type { ToParent, WorkerConfig, WorkerSystem, WorkPayload } from './support/partitions-worker.js';
import { type Cell, printTable, ratio, times } from './support/table.js';
import { perSecond, sleep } from './support/timing.js';

/** Messages per Postbox run; about 10 s at one process on a quiet machine. */
const postboxCount = Number(process.env.BENCH_PARTITIONS_COUNT ?? 80_000);
const graphileCount = Number(process.env.BENCH_PARTITIONS_GRAPHILE_COUNT ?? postboxCount);
const pgBossCount = Number(process.env.BENCH_PARTITIONS_PGBOSS_COUNT ?? 20_000);
const limitCount = Number(process.env.BENCH_PARTITIONS_LIMIT_COUNT ?? 40_000);
const partitions = Number(process.env.BENCH_PARTITIONS_PARTITIONS ?? 8);
/** CPU time the handler burns per message, in µs of an uncontended core. */
const handlerUs = Number(process.env.BENCH_PARTITIONS_HANDLER_US ?? 100);
const deadlineMs = Number(process.env.BENCH_PARTITIONS_DEADLINE_S ?? 300) * 1000;
/** Distinct keys: message i has key i mod keyCount, so each key has count / keyCount messages, in order. */
const keyCount = 1_000;
const loadBatch = 1_000;
/**
 * pg-boss 10 (its docs/api/workers.md): each work() call adds a worker that fetches `batchSize` jobs,
 * hands them to the handler as one array, completes them in one call, then waits out the rest of its
 * polling interval (pollingIntervalSeconds, at least 0.5). Five workers of 1,000 jobs (the fetch size
 * of the consume benchmark), priority off, fetch more per 0.5 s than one process can burn.
 */
const pgBossWorkers = Number(process.env.BENCH_PARTITIONS_PGBOSS_WORKERS ?? 5);
const pgBossBatchSize = Number(process.env.BENCH_PARTITIONS_PGBOSS_BATCH ?? 1_000);
/** graphile-worker: the configuration of its performance page (concurrentJobs 24, maxPoolSize 25, localQueue 500, batched completion). */
const graphile = { concurrency: 24, poolSize: 25, localQueue: 500 };

const workerScript = fileURLToPath(new URL('./support/partitions-worker.ts', import.meta.url));

const keyOf = (seq: number) => `account-${seq % keyCount}`;
const payloadOf = (seq: number): WorkPayload => ({ seq, key: keyOf(seq) });

interface OrderCheck {
  /** Distinct messages handled, and handlings beyond the first. */
  handled: number;
  duplicates: number;
  /** Messages whose handling started before that of an earlier message of the same key. */
  outOfOrder: number;
}

interface Run {
  system: WorkerSystem;
  processes: number;
  messages: number;
  ms: number;
  /** CPU of the worker processes, and of the database's server processes, from go to all handled. */
  workerCpuMs: number;
  serverCpuMs: number | undefined;
  machine: MachineCpu | undefined;
  order: OrderCheck;
}

interface Child {
  process: ChildProcess;
  handled: number;
  ready: Promise<void>;
  done: Promise<Extract<ToParent, { type: 'done' }>>;
}

function startChild(config: WorkerConfig, onProgress: () => void): Child {
  const child = spawn(process.execPath, ['--conditions=postbox-source', '--import', 'tsx', workerScript, JSON.stringify(config)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  let markReady: () => void = () => {};
  let markDone: (message: Extract<ToParent, { type: 'done' }>) => void = () => {};
  let fail: (error: Error) => void = () => {};
  const failure = new Promise<never>((_, reject) => {
    fail = reject;
  });
  failure.catch(() => undefined);
  const entry: Child = {
    process: child,
    handled: 0,
    ready: Promise.race([new Promise<void>((resolve) => (markReady = resolve)), failure]),
    done: Promise.race([new Promise<Extract<ToParent, { type: 'done' }>>((resolve) => (markDone = resolve)), failure]),
  };
  entry.ready.catch(() => undefined);
  entry.done.catch(() => undefined);
  child.on('message', (message: ToParent) => {
    if (message.type === 'ready') markReady();
    else if (message.type === 'progress') {
      entry.handled = message.handled;
      onProgress();
    } else if (message.type === 'done') markDone(message);
    else if (message.type === 'failed') fail(new Error(`${config.system} worker failed: ${message.error}`));
  });
  // 'close', not 'exit': it comes after the last message on the channel has been read.
  child.once('close', (code, signal) => fail(new Error(`${config.system} worker exited (${code ?? signal})`)));
  return entry;
}

async function exited(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exit = new Promise((resolve) => child.once('exit', resolve));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exit;
  clearTimeout(timer);
}

function checkOrder(total: number, done: Extract<ToParent, { type: 'done' }>[]): OrderCheck {
  const started = new Float64Array(total).fill(Number.NaN);
  let duplicates = 0;
  for (const { seqs, startedAt } of done) {
    seqs.forEach((seq, i) => {
      const at = startedAt[i] as number;
      if (Number.isNaN(started[seq] as number)) started[seq] = at;
      else {
        duplicates += 1;
        started[seq] = Math.min(started[seq] as number, at);
      }
    });
  }
  let handled = 0;
  let outOfOrder = 0;
  for (let key = 0; key < keyCount; key++) {
    let latest = Number.NEGATIVE_INFINITY;
    for (let seq = key; seq < total; seq += keyCount) {
      const at = started[seq] as number;
      if (Number.isNaN(at)) continue;
      handled += 1;
      if (at < latest) outOfOrder += 1;
      latest = Math.max(latest, at);
    }
  }
  return { handled, duplicates, outOfOrder };
}

/**
 * Starts `processes` workers of a system and waits until all of them are ready (connected, set up);
 * then times from `go` until they have handled `total` messages and `settled` (the jobs' completion
 * as the database sees it) resolves.
 */
async function runWorkers(
  system: WorkerSystem,
  processes: number,
  name: string,
  total: number,
  iterations: number,
  database: BenchDatabase,
  sampler: pg.Client,
  settled: () => Promise<void> = async () => {},
  /**
   * Starts the workers on an empty queue, then writes the messages and returns what makes them
   * visible at once (a commit): the timing starts there, with every member already in the group.
   */
  preload?: () => Promise<() => Promise<void>>,
): Promise<Run> {
  const base: WorkerConfig = {
    system,
    url: database.url,
    name,
    iterations,
    count: 0,
    first: 0,
    partitions,
    pgBossWorkers,
    pgBossBatchSize,
    graphileConcurrency: graphile.concurrency,
    graphilePoolSize: graphile.poolSize,
    graphileLocalQueue: graphile.localQueue,
  };
  let allHandled: () => void = () => {};
  const handledAll = new Promise<void>((resolve) => (allHandled = resolve));
  const children: Child[] = [];
  const onProgress = () => {
    if (children.reduce((sum, c) => sum + c.handled, 0) >= total) allHandled();
  };
  for (let i = 0, first = 0; i < processes; i++) {
    const count = Math.floor(total / processes) + (i < total % processes ? 1 : 0);
    children.push(startChild({ ...base, count, first }, onProgress));
    first += count;
  }
  try {
    await Promise.all(children.map((c) => c.ready));
    let publish: (() => Promise<void>) | undefined;
    if (preload) {
      for (const child of children) child.process.send({ type: 'go' });
      publish = await preload();
    }
    const server = system === 'limit' ? undefined : await ServerCpu.start(sampler, database.name);
    const machineAtGo = machineCpu();
    const started = performance.now();
    if (publish) await publish();
    else for (const child of children) child.process.send({ type: 'go' });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const handled = children.map((c) => c.handled).join(' + ');
        reject(new Error(`${system}, ${processes} processes: ${handled} of ${total} handled after ${deadlineMs / 1000} s`));
      }, deadlineMs);
    });
    await Promise.race([handledAll.then(settled), deadline, ...children.map((c) => c.done)]);
    clearTimeout(timer);
    const ms = performance.now() - started;
    const serverCpuMs = await server?.stop();
    const machine = machineCpuSince(machineAtGo);
    for (const child of children) child.process.send({ type: 'stop' });
    const done = await Promise.all(children.map((c) => c.done));
    await Promise.all(children.map((c) => exited(c.process, 10_000)));
    return {
      system,
      processes,
      messages: total,
      ms,
      workerCpuMs: done.reduce((sum, d) => sum + d.cpuMs, 0),
      serverCpuMs,
      machine,
      order: checkOrder(total, done),
    };
  } finally {
    for (const child of children) if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
  }
}

/** Polls fn every 5 ms until it returns 0. */
async function untilZero(fn: () => Promise<number>): Promise<void> {
  while ((await fn()) > 0) await sleep(5);
}

/**
 * Creates the group (the topic still empty) by starting and stopping a member of it, so that the
 * workers join a group that exists, as the processes of a deployed group do.
 */
async function createGroup(postbox: Postbox, name: string): Promise<void> {
  const consumer = postbox.consumer({ group: name, topics: [name], partitions, handleBatch: async () => {} });
  await consumer.start();
  await consumer.stop();
}

/** Waits until the live members split the group's partitions evenly, as a deployed group runs. */
async function evenShares(postbox: Postbox, name: string, members: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const [status] = await postbox.groupStatus(name);
    const held = new Map<string, number>();
    for (const partition of status?.partitions ?? []) {
      if (partition.owner) held.set(partition.owner, (held.get(partition.owner) ?? 0) + 1);
    }
    const counts = [...held.values()];
    const owned = counts.reduce((sum, n) => sum + n, 0);
    if (owned === partitions && held.size === members && Math.max(...counts) - Math.min(...counts) <= 1) return;
    if (Date.now() > deadline) throw new Error(`group ${name}: partitions not shared by ${members} members after 30 s`);
    await sleep(50);
  }
}

/** Writes the messages in one transaction and returns its commit, which makes them visible at once. */
async function loadPostbox(client: pg.Client, postbox: Postbox, topic: string, total: number): Promise<() => Promise<void>> {
  await client.query('begin');
  for (const batch of chunks(total, loadBatch, (seq) => ({ topic, type: 'work.requested', key: keyOf(seq), payload: payloadOf(seq) }))) {
    await postbox.enqueue(client, batch);
  }
  return async () => {
    await client.query('commit');
  };
}

async function loadPgBoss(url: string, queue: string, total: number): Promise<void> {
  const boss = new PgBoss({ connectionString: url });
  boss.on('error', (error) => console.error('pg-boss:', error));
  await boss.start();
  await boss.createQueue(queue);
  for (const batch of chunks(total, loadBatch, (seq) => ({ name: queue, data: payloadOf(seq) }))) await boss.insert(batch);
  await boss.stop({ graceful: false, wait: true });
}

async function main(): Promise<void> {
  const iterations = calibrate(handlerUs);
  const database = await createDatabase('partitions');
  const postbox = await Postbox.create({ databaseUrl: database.url, migrate: 'auto' });
  const client = await connect(database.url);
  const sampler = await connect(database.url);
  const utils = await makeWorkerUtils({ connectionString: database.url });
  const runs: Run[] = [];
  try {
    await utils.migrate();
    const scaling = (system: WorkerSystem) => {
      const [one, two] = [1, 2].map((p) => runs.find((r) => r.system === system && r.processes === p) as Run) as [Run, Run];
      return perSecond(two.messages, two.ms) / perSecond(one.messages, one.ms);
    };

    for (const processes of [1, 2]) {
      runs.push(await runWorkers('limit', processes, 'limit', limitCount, iterations, database, sampler));
    }
    for (const processes of [1, 2]) {
      const name = `work_postbox_${processes}`;
      await createGroup(postbox, name);
      const preload = async () => {
        await evenShares(postbox, name, processes);
        return loadPostbox(client, postbox, name, postboxCount);
      };
      runs.push(await runWorkers('postbox', processes, name, postboxCount, iterations, database, sampler, undefined, preload));
      const [status] = await postbox.groupStatus(name);
      if (status?.lagMessages !== 0) throw new Error(`Postbox group ${name} ended with ${status?.lagMessages} messages pending`);
    }
    for (const processes of [1, 2]) {
      const name = `work_graphile_${processes}`;
      for (const batch of chunks(graphileCount, loadBatch, (seq) => ({ identifier: name, payload: payloadOf(seq) }))) {
        await utils.addJobs(batch);
      }
      const remaining = async () =>
        (await client.query<{ n: number }>('select count(*)::int as n from graphile_worker.jobs where task_identifier = $1', [name]))
          .rows[0]?.n ?? 0;
      runs.push(
        await runWorkers('graphile-worker', processes, name, graphileCount, iterations, database, sampler, () => untilZero(remaining)),
      );
    }
    for (const processes of [1, 2]) {
      const name = `work_pgboss_${processes}`;
      await loadPgBoss(database.url, name, pgBossCount);
      const remaining = async () =>
        (await client.query<{ n: number }>(`select count(*)::int as n from pgboss.job where name = $1 and state < 'completed'`, [name]))
          .rows[0]?.n ?? 0;
      runs.push(await runWorkers('pg-boss', processes, name, pgBossCount, iterations, database, sampler, () => untilZero(remaining)));
    }

    const run = (system: WorkerSystem, processes: number) => runs.find((r) => r.system === system && r.processes === processes) as Run;
    const rate = (r: Run) => perSecond(r.messages, r.ms);
    const labels: Record<Exclude<WorkerSystem, 'limit'>, string> = {
      postbox: `Postbox consumer group, ${partitions} partitions`,
      'graphile-worker': `graphile-worker 0.17 (concurrency ${graphile.concurrency}, local queue ${graphile.localQueue})`,
      'pg-boss': `pg-boss 10 (${pgBossWorkers} work() × batch ${pgBossBatchSize})`,
    };
    const order = (r: Run) => {
      const seen = `${r.order.outOfOrder.toLocaleString('en-US')} of ${r.order.handled.toLocaleString('en-US')} out of order`;
      if (r.system === 'postbox') return r.order.outOfOrder === 0 ? `yes (${seen})` : `NO (${seen})`;
      return `no: not kept by design (${seen})`;
    };
    const systems = ['postbox', 'graphile-worker', 'pg-boss'] as const;
    printTable(
      `Partitions: a handler burning ${handlerUs} µs of CPU per message (${iterations.toLocaleString('en-US')} xorshift rounds), ${keyCount.toLocaleString('en-US')} keys, 1 then 2 worker processes on 2 cores`,
      ['system', 'processes', 'messages', 'seconds', 'msg/s', 'scaling (2 ÷ 1)', 'per-key order kept'],
      systems.flatMap((system) =>
        [1, 2].map((processes): Cell[] => {
          const r = run(system, processes);
          return [
            labels[system],
            String(processes),
            r.messages.toLocaleString('en-US'),
            (r.ms / 1000).toFixed(2),
            rate(r),
            processes === 2 ? times(scaling(system), 1, 2) : '',
            order(r),
          ];
        }),
      ),
    );
    printTable(
      'Partitions: the upper limit, the same CPU work in a tight loop with no database',
      ['processes', 'messages', 'seconds', 'msg/s', 'wall µs per message per process', 'scaling (2 ÷ 1)'],
      [1, 2].map((processes): Cell[] => {
        const r = run('limit', processes);
        return [
          String(processes),
          r.messages.toLocaleString('en-US'),
          (r.ms / 1000).toFixed(2),
          rate(r),
          (r.ms * 1000 * processes) / r.messages,
          processes === 2 ? times(scaling('limit'), 1, 2) : '',
        ];
      }),
    );
    const cores = (ms: number | undefined, r: Run) => (ms === undefined ? 'n/a' : (ms / r.ms).toFixed(2));
    printTable(
      'Partitions: where the CPU went, from go to all handled (cores: CPU ms ÷ wall ms; "other" is the rest of the machine)',
      ['system', 'processes', 'workers µs/msg', 'server µs/msg', 'workers, cores', 'server, cores', 'machine busy, cores', 'other, cores'],
      runs.map((r): Cell[] => {
        const other = r.machine ? r.machine.busyMs - r.workerCpuMs - (r.serverCpuMs ?? 0) : undefined;
        return [
          r.system === 'limit' ? 'tight loop, no database' : labels[r.system],
          String(r.processes),
          (r.workerCpuMs * 1000) / r.messages,
          r.serverCpuMs === undefined ? 'n/a' : (r.serverCpuMs * 1000) / r.messages,
          cores(r.workerCpuMs, r),
          cores(r.serverCpuMs, r),
          cores(r.machine?.busyMs, r),
          cores(other, r),
        ];
      }),
    );
    const postboxScaling = scaling('postbox');
    printTable(
      'Partitions: ratios',
      ['comparison', 'ratio', 'target'],
      [
        ['Postbox, 2 processes ÷ 1 process', times(postboxScaling, 1, 2), '≥ 1.60×'],
        ['the same of the tight loop’s scaling', ratio(postboxScaling, scaling('limit')), '—'],
        ['Postbox ÷ graphile-worker, 1 process', times(rate(run('postbox', 1)), rate(run('graphile-worker', 1))), '—'],
        ['Postbox ÷ graphile-worker, 2 processes', times(rate(run('postbox', 2)), rate(run('graphile-worker', 2))), '—'],
        ['Postbox ÷ pg-boss, 1 process', times(rate(run('postbox', 1)), rate(run('pg-boss', 1))), '—'],
        ['Postbox ÷ pg-boss, 2 processes', times(rate(run('postbox', 2)), rate(run('pg-boss', 2))), '—'],
      ],
    );
    const duplicates = runs.filter((r) => r.order.duplicates > 0);
    if (duplicates.length > 0) {
      console.log(
        `Delivered more than once: ${duplicates.map((r) => `${r.system} at ${r.processes} processes, ${r.order.duplicates}`).join('; ')}.`,
      );
    }
    console.log(`partitions: scaling ${postboxScaling.toFixed(2)}x at 2 processes`);
  } finally {
    await utils.release();
    await sampler.end();
    await client.end();
    await postbox.close();
    await database.drop();
  }
}

await main();
