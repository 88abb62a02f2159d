import { type Executor, Postbox } from 'postbox';
import type { Scenario, ScenarioOutcome } from '../scenario.js';
import { type ChildHandle, ProcessGroup, processEntry } from '../support/child-process.js';
import { countDeliveries, tally } from '../support/delivery-count.js';
import {
  clusterServing,
  type PostgresCluster,
  restartCluster,
  type ShutdownMode,
  startCluster,
  stopCluster,
  waitUntilAccepting,
  waitUntilServerIsOurs,
} from '../support/postgres-cluster.js';
import { createProducedTable, outboxMismatch, producedIds, producedTable } from '../support/steady-producer.js';
import { delay } from '../support/wait.js';
import { waitForCount } from '../support/wait-for-count.js';

const topic = 'steady';
const consumerGroup = 'outage-consumer';
const routerGroup = 'outage-router';
/** The router's batch (the library default): what one outage may deliver twice at most. */
const routerBatchSize = 1_000;

/** `restart` is pg_ctlcluster's own restart; `stop` stops the server, waits outageMs, and starts it. */
interface Outage {
  kind: 'restart' | 'stop';
  mode: ShutdownMode;
  outageMs: number;
}

const plans: Record<'full' | 'reduced', { outages: Outage[]; rate: number; betweenMs: number }> = {
  full: {
    outages: [
      { kind: 'restart', mode: 'fast', outageMs: 0 },
      { kind: 'stop', mode: 'immediate', outageMs: 3_000 },
      { kind: 'stop', mode: 'fast', outageMs: 8_000 },
    ],
    rate: 400,
    betweenMs: 3_000,
  },
  reduced: { outages: [{ kind: 'restart', mode: 'fast', outageMs: 0 }], rate: 300, betweenMs: 500 },
};

interface Recovery {
  publisher: number | undefined;
  consumer: number | undefined;
  router: number | undefined;
}

async function inject(cluster: PostgresCluster, outage: Outage): Promise<void> {
  if (outage.kind === 'restart') {
    await restartCluster(cluster, outage.mode);
    return;
  }
  await stopCluster(cluster, outage.mode);
  await delay(outage.outageMs);
  await startCluster(cluster);
}

/** Milliseconds from the server's return to each process's first work after it, on the server's clock. */
async function firstWorkAfter(db: Executor, started: Date): Promise<Recovery> {
  const { rows } = await db.query<{ publisher: number | null; consumer: number | null; router: number | null }>(
    `select extract(epoch from (select min(produced_at) from ${producedTable} where produced_at > $1) - $1) * 1000 as publisher,
            extract(epoch from (select min(at) from chaos_consumer_effects where at > $1) - $1) * 1000 as consumer,
            extract(epoch from (select min(at) from chaos_router_effects where at > $1) - $1) * 1000 as router`,
    [started],
  );
  const row = rows[0];
  const ms = (value: number | null | undefined) => (value === null || value === undefined ? undefined : Number(value));
  return { publisher: ms(row?.publisher), consumer: ms(row?.consumer), router: ms(row?.router) };
}

async function effectIds(db: Executor, table: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(`select message_id::text as id from ${table}`);
  return rows.map((row) => row.id);
}

function unexpectedExits(handles: readonly ChildHandle[], stopping: ReadonlySet<ChildHandle>): string[] {
  return handles
    .filter((handle) => !handle.running && !stopping.has(handle))
    .map((handle) => `${handle.name} exited by itself during the outages: ${handle.outputTail.slice(-500)}`);
}

export const postgresRestart: Scenario = {
  name: 'postgres-restart',
  summary:
    'restart the PostgreSQL server (and stop it for seconds) under a publisher, a transactional group and a router: 0 lost, all recover by themselves',
  async run({ mode, databaseUrl, adminUrl, log }): Promise<ScenarioOutcome> {
    const plan = plans[mode];
    const cluster = await clusterServing(adminUrl);
    const ownDatabase = new URL(databaseUrl).pathname.slice(1);
    const processes = new ProcessGroup();
    const postbox = await Postbox.create({ databaseUrl, migrate: 'auto', pool: { max: 2 } });
    try {
      await createProducedTable(postbox.db);
      await postbox.db.exec(`
        create table chaos_consumer_effects (message_id uuid not null, at timestamptz not null default clock_timestamp());
        create table chaos_router_effects (message_id uuid not null, at timestamptz not null default clock_timestamp());`);
      const env = { DATABASE_URL: databaseUrl, TOPIC: topic };
      const consumer = processes.start('consumer', processEntry('outage-consumer.ts'), { ...env, GROUP: consumerGroup });
      const router = processes.start('router', processEntry('outage-router.ts'), { ...env, GROUP: routerGroup });
      const publisher = processes.start('publisher', processEntry('steady-publisher.ts'), { ...env, RATE: String(plan.rate) });
      await Promise.all([
        consumer.waitForLine('active', 30_000),
        router.waitForLine('active', 30_000),
        publisher.waitForLine('publishing', 30_000),
      ]);
      log(`publisher, group and router running on cluster ${cluster.version}/${cluster.name}`);
      const handles = [publisher, consumer, router];
      const stopping = new Set<ChildHandle>();
      const violations: string[] = [];
      const recoveries: number[] = [];
      const outageLines: string[] = [];

      for (const [index, outage] of plan.outages.entries()) {
        await delay(plan.betweenMs);
        await waitUntilServerIsOurs(adminUrl, ownDatabase, 60_000);
        const injected = performance.now();
        await inject(cluster, outage).catch(async (error) => {
          // The server must be up again before anything else runs, whatever went wrong.
          await startCluster(cluster).catch(() => undefined);
          throw error;
        });
        const started = await waitUntilAccepting(adminUrl, 60_000);
        const downMs = performance.now() - injected;
        let recovery: Recovery = { publisher: undefined, consumer: undefined, router: undefined };
        const deadline = performance.now() + 60_000;
        while (performance.now() < deadline) {
          recovery = await firstWorkAfter(postbox.db, started).catch(() => recovery);
          if (recovery.publisher !== undefined && recovery.consumer !== undefined && recovery.router !== undefined) break;
          await delay(100);
        }
        const label = `${outage.kind} --mode ${outage.mode}${outage.kind === 'stop' ? ` for ${outage.outageMs} ms` : ''}`;
        const missing = Object.entries(recovery).filter(([, ms]) => ms === undefined);
        if (missing.length > 0)
          violations.push(`after outage ${index + 1} (${label}), ${missing.map(([name]) => name).join(', ')} did no work within 60 s`);
        const worst = Math.max(...Object.values(recovery).map((ms) => ms ?? 60_000));
        recoveries.push(worst);
        const figures = Object.entries(recovery).map(([name, ms]) => `${name} ${ms === undefined ? 'never' : `${Math.round(ms)} ms`}`);
        const line = `${label}: server down ${Math.round(downMs)} ms; first work after it was back: ${figures.join(', ')}`;
        outageLines.push(line);
        log(line);
      }

      await delay(plan.betweenMs);
      log('stopping the publisher and draining');
      violations.push(...unexpectedExits(handles, stopping));
      stopping.add(publisher);
      publisher.signal('SIGTERM');
      const published = await publisher.exited;
      if (published.code !== 0) violations.push(`the publisher exited with ${published.code ?? published.signal} on SIGTERM`);

      const sentIds = await producedIds(postbox.db, topic);
      const distinctIn = async (table: string) => {
        const { rows } = await postbox.db.query<{ count: number }>(`select count(distinct message_id)::int as count from ${table}`);
        return Number(rows[0]?.count ?? 0);
      };
      const drained = await Promise.all(
        ['chaos_consumer_effects', 'chaos_router_effects'].map((table) =>
          waitForCount(() => distinctIn(table), sentIds.length, { stallMs: 20_000, timeoutMs: 90_000, intervalMs: 200 }),
        ),
      );
      for (const handle of [consumer, router]) {
        stopping.add(handle);
        handle.signal('SIGTERM');
      }
      for (const handle of [consumer, router]) {
        const exit = await handle.exited;
        if (exit.code !== 0) violations.push(`the ${handle.name} exited with ${exit.code ?? exit.signal} on SIGTERM`);
      }

      const consumerCount = countDeliveries(sentIds, tally(await effectIds(postbox.db, 'chaos_consumer_effects')));
      const routerCount = countDeliveries(sentIds, tally(await effectIds(postbox.db, 'chaos_router_effects')));
      const deadLetters = (await postbox.deadLetters.counts()).reduce((sum, row) => sum + row.count, 0);
      const mismatch = await outboxMismatch(postbox.db, topic);
      for (const [name, count] of [
        ['the transactional group', consumerCount],
        ['the router', routerCount],
      ] as const) {
        if (count.lost > 0) violations.push(`${name} never handled ${count.lost} sent messages (e.g. ${count.lostExamples.join(', ')})`);
        if (count.unexpected > 0) violations.push(`${name} handled ${count.unexpected} messages that were never sent`);
      }
      for (const [index, wait] of drained.entries()) {
        if (!wait.reached) violations.push(`${index === 0 ? 'the group' : 'the router'} stopped at ${wait.count} of ${sentIds.length}`);
      }
      if (consumerCount.duplicated > 0) violations.push(`the transactional group has ${consumerCount.duplicated} duplicate effects`);
      const allowance = plan.outages.length * routerBatchSize;
      if (routerCount.duplicated > allowance)
        violations.push(`the router delivered ${routerCount.duplicated} duplicates, over ${allowance}`);
      if (deadLetters > 0) violations.push(`${deadLetters} messages went to dead letters because of the outages`);
      if (mismatch.rowsWithoutMessage + mismatch.messagesWithoutRow > 0) {
        violations.push(`outbox and business rows disagree: ${JSON.stringify(mismatch)}`);
      }

      return {
        runs: plan.outages.length,
        sent: sentIds.length,
        received: consumerCount.received + routerCount.received,
        lost: consumerCount.lost + routerCount.lost,
        duplicated: consumerCount.duplicated + routerCount.duplicated,
        maxRecoveryMs: Math.max(0, ...recoveries),
        violations,
        notes: [
          ...outageLines,
          `recovery = from the server accepting connections again to the last of publisher, group and router doing work again`,
          `received = the transactional group's effects (${consumerCount.received}) plus the router's deliveries (${routerCount.received}); the router may repeat up to a batch per outage (${allowance})`,
        ],
      };
    } finally {
      await processes.killAll();
      await postbox.close();
    }
  },
};
