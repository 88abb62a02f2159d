import { Postbox } from 'postbox';
import type { Scenario, ScenarioOutcome } from '../scenario.js';
import { ProcessGroup, processEntry } from '../support/child-process.js';

const topic = 'volume';
const group = 'volume-router';
const samples = 20;
const mib = 1024 * 1024;

const plans = {
  full: { messages: 1_000_000, heapAllowanceBytes: 4 * mib, timeoutMs: 300_000 },
  reduced: { messages: 50_000, heapAllowanceBytes: 4 * mib, timeoutMs: 90_000 },
} as const;
/** RSS also moves with the allocator and the JIT; only a large growth is a leak. */
const rssAllowanceBytes = 64 * mib;
/** Timers come and go with the poll loop and the heartbeat; a leak grows without bound. */
const resourceAllowance = 2;
/** Handles of database connections, checked against the connections open instead. */
const connectionHandles = new Set(['TCPSocketWrap', 'ConnectWrap']);
/** The library's default pool (10) and its LISTEN connection. */
const maxPoolConnections = 11;

interface Sample {
  handled: number;
  deliveries: number;
  rssBytes: number;
  heapUsedBytes: number;
  resources: Record<string, number>;
  connections: number;
  maxListeners: number;
}

async function readSamples(postbox: Postbox): Promise<Sample[]> {
  const { rows } = await postbox.db.query<Record<string, string | number | Record<string, number>>>(
    'select * from chaos_memory_samples order by handled',
  );
  return rows.map((row) => ({
    handled: Number(row.handled),
    deliveries: Number(row.deliveries),
    rssBytes: Number(row.rss_bytes),
    heapUsedBytes: Number(row.heap_used_bytes),
    resources: row.resources as Record<string, number>,
    connections: Number(row.connections),
    maxListeners: Number(row.max_listeners),
  }));
}

/** Least-squares slope of heap used against messages handled, in bytes per message. */
function heapSlope(points: readonly Sample[]): number {
  const n = points.length;
  const meanX = points.reduce((sum, p) => sum + p.handled, 0) / n;
  const meanY = points.reduce((sum, p) => sum + p.heapUsedBytes, 0) / n;
  const covariance = points.reduce((sum, p) => sum + (p.handled - meanX) * (p.heapUsedBytes - meanY), 0);
  const variance = points.reduce((sum, p) => sum + (p.handled - meanX) ** 2, 0);
  return variance === 0 ? 0 : covariance / variance;
}

const inMib = (bytes: number) => `${(bytes / mib).toFixed(1)} MiB`;
const resources = (sample: Sample) =>
  Object.entries(sample.resources)
    .map(([type, count]) => `${type} ${count}`)
    .join(', ');
const totalResources = (sample: Sample) => Object.values(sample.resources).reduce((sum, count) => sum + count, 0);

export const memory: Scenario = {
  name: 'memory',
  summary: 'one router group handles a million messages: heap after GC, RSS, active handles and connection listeners stay flat',
  async run({ mode, databaseUrl, log }): Promise<ScenarioOutcome> {
    const plan = plans[mode];
    const processes = new ProcessGroup();
    const postbox = await Postbox.create({ databaseUrl, migrate: 'auto' });
    try {
      await postbox.db.exec(`create table chaos_memory_samples (
        handled int not null, deliveries int not null, rss_bytes bigint not null, heap_used_bytes bigint not null,
        resources jsonb not null, connections int not null, max_listeners int not null)`);
      const router = processes.start('memory-router', processEntry('memory-router.ts'), {
        DATABASE_URL: databaseUrl,
        GROUP: group,
        TOPIC: topic,
        TOTAL: String(plan.messages),
        SAMPLES: String(samples),
      });
      await router.waitForLine('active', 30_000);
      const started = performance.now();
      // Four publishers at once, so that publishing keeps ahead of the group on two cores.
      const batch = 1_000;
      const publishers = 4;
      await Promise.all(
        Array.from({ length: publishers }, async (_, publisher) => {
          for (let first = publisher * batch; first < plan.messages; first += publishers * batch) {
            await postbox.publish(
              Array.from({ length: Math.min(batch, plan.messages - first) }, (_, offset) => {
                const sequence = first + offset;
                return {
                  topic,
                  type: 'volume',
                  key: `key-${sequence % 64}`,
                  payload: { sequence, note: 'a payload of about a hundred bytes' },
                };
              }),
            );
          }
        }),
      );
      const publishedMs = performance.now() - started;
      log(`published ${plan.messages.toLocaleString('en-US')} messages in ${(publishedMs / 1000).toFixed(1)} s`);
      await router.waitForLine('done', plan.timeoutMs);
      const handledMs = performance.now() - started;
      router.signal('SIGTERM');
      const exit = await router.exited;

      const points = await readSamples(postbox);
      const violations: string[] = [];
      if (exit.code !== 0) violations.push(`the router process exited with ${exit.code ?? exit.signal} on SIGTERM`);
      const warm = points[1];
      const last = points.at(-1);
      if (!warm || !last || points.length !== samples) throw new Error(`expected ${samples} samples, found ${points.length}`);
      const heapGrowth = last.heapUsedBytes - warm.heapUsedBytes;
      const rssGrowth = last.rssBytes - warm.rssBytes;
      const slope = heapSlope(points.slice(1));
      if (heapGrowth > plan.heapAllowanceBytes) {
        violations.push(
          `heap after GC grew by ${inMib(heapGrowth)} from ${warm.handled} to ${last.handled} messages (allowed ${inMib(plan.heapAllowanceBytes)})`,
        );
      }
      if (rssGrowth > rssAllowanceBytes) violations.push(`RSS grew by ${inMib(rssGrowth)} (allowed ${inMib(rssAllowanceBytes)})`);
      // Sockets follow the pool, which grows and shrinks up to its maximum; any other handle must not grow.
      const grownResources = Object.entries(last.resources).filter(
        ([type, count]) => !connectionHandles.has(type) && count > (warm.resources[type] ?? 0) + resourceAllowance,
      );
      if (grownResources.length > 0) {
        violations.push(
          `active resources grew: ${grownResources.map(([type, count]) => `${type} ${warm.resources[type] ?? 0} → ${count}`).join(', ')}`,
        );
      }
      const maxConnections = Math.max(...points.map((point) => point.connections));
      if (maxConnections > maxPoolConnections)
        violations.push(`${maxConnections} database connections open at once, over ${maxPoolConnections}`);
      const strays = points.filter((point) => (point.resources.TCPSocketWrap ?? 0) > point.connections + resourceAllowance);
      if (strays.length > 0) violations.push(`sockets outnumber database connections: ${resources(strays.at(-1) as Sample)}`);
      const maxListeners = Math.max(...points.map((point) => point.maxListeners));
      if (maxListeners > warm.maxListeners + 1) {
        violations.push(`listeners on one database connection grew from ${warm.maxListeners} to ${maxListeners}`);
      }
      const lost = plan.messages - last.handled;
      const duplicated = last.deliveries - last.handled;
      if (lost > 0) violations.push(`${lost} messages never reached the handler`);

      const first = points[0] as Sample;
      return {
        runs: 1,
        sent: plan.messages,
        received: last.deliveries,
        lost,
        duplicated,
        maxRecoveryMs: 0,
        violations,
        notes: [
          `heap used after GC: ${inMib(first.heapUsedBytes)} at ${first.handled}, ${inMib(warm.heapUsedBytes)} at ${warm.handled}, ${inMib(last.heapUsedBytes)} at ${last.handled} messages (slope ${slope.toFixed(2)} bytes/message; flat = under ${inMib(plan.heapAllowanceBytes)} growth after the first 10%)`,
          `RSS ${inMib(first.rssBytes)}, ${inMib(warm.rssBytes)}, ${inMib(last.rssBytes)} (flat = under ${inMib(rssAllowanceBytes)} growth)`,
          `active resources ${totalResources(warm)} (${resources(warm)}) after 10%, ${totalResources(last)} (${resources(last)}) at the end; ${last.connections} connections, at most ${maxListeners} listeners on one`,
          `published in ${(publishedMs / 1000).toFixed(1)} s, all handled ${(handledMs / 1000).toFixed(1)} s after the first publish (${Math.round(plan.messages / (handledMs / 1000)).toLocaleString('en-US')} msg/s)`,
        ],
      };
    } finally {
      await processes.killAll();
      await postbox.close();
    }
  },
};
