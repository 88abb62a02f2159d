import { join } from 'node:path';
import { migrate, Postbox } from 'postbox';
import { todoHistoryMigrations } from '../../../apps/todo-history/src/db/migration-set.js';
import { appDefaults } from '../../../apps/todo-history/src/defaults.js';
import type { Scenario, ScenarioOutcome } from '../scenario.js';
import { type ChildHandle, ProcessGroup, repositoryRoot } from '../support/child-process.js';
import { groupLag, ownerPid, serverNow, waitForCatchUp } from '../support/consumer-group-row.js';
import { describeDurations } from '../support/durations.js';
import { TodoApiLoad } from '../support/todo-api-load.js';
import { auditTodoHistory } from '../support/todo-history-audit.js';
import { delay, randomBetween, waitFor } from '../support/wait.js';

const appMain = join(repositoryRoot, 'apps/todo-history/src/main.ts');
const group = appDefaults.groupId;
const topic = appDefaults.topic;

const settings = {
  full: { kills: 8, clients: 4, runMs: [1_000, 3_000] as const },
  reduced: { kills: 1, clients: 3, runMs: [800, 1_500] as const },
};

interface RunningApp {
  handle: ChildHandle;
  incarnation: number;
}

/** When the history consumer of the app with this pid has committed a batch since `since` (server clock). */
async function historyResumedBy(postbox: Postbox, pid: number | undefined, since: Date): Promise<boolean> {
  const { rows } = await postbox.db.query<{ owner: string }>(
    'select lease_owner as owner from postbox.group_partitions where group_name = $1 and updated_at >= $2 and last_error is null',
    [group, since],
  );
  return rows.some((row) => ownerPid(row.owner ?? '') === pid);
}

/**
 * Resolves with the time from the kill until the history consumer of the restarted app committed
 * its first batch, or undefined when that app was killed first.
 */
async function watchHistoryResume(postbox: Postbox, app: RunningApp, since: Date, killedAt: number): Promise<number | undefined> {
  while (app.handle.running) {
    if (await historyResumedBy(postbox, app.handle.pid, since).catch(() => false)) return performance.now() - killedAt;
    await delay(20);
  }
  return undefined;
}

/**
 * kill -9 of the todo-history process (`npm start`'s entry, on the scenario's database) while
 * clients create groups and tasks, change statuses and comment; after each kill the app is started
 * again. Every acknowledged change must have its row and, once the restarted app's history consumer
 * has caught up, its history entry; no history entry may exist without its committed change.
 */
export const crashTodoApi: Scenario = {
  name: 'crash-todo-api',
  summary: 'kill -9 the todo API under HTTP load and restart it: acknowledged changes are kept, rows and history agree',
  async run(context): Promise<ScenarioOutcome> {
    const { kills, clients, runMs } = settings[context.mode];
    const postbox = await Postbox.create({ databaseUrl: context.databaseUrl, migrate: 'auto' });
    const processes = new ProcessGroup();
    const load = new TodoApiLoad(clients);
    const violations: string[] = [];
    let incarnations = 0;
    const startApp = async (): Promise<RunningApp> => {
      const incarnation = incarnations++;
      const handle = processes.start(`todo-history-${incarnation}`, appMain, {
        DATABASE_URL: context.databaseUrl,
        TIMESCALE_URI: undefined,
        POSTBOX_DATA_DIR: undefined,
        KAFKA_BROKERS: undefined,
        OPS_TOKEN: undefined,
        ENABLE_METRICS: 'false',
        HOST: '127.0.0.1',
        PORT: '0',
        LOG_LEVEL: 'warn',
      });
      const line = await handle.waitForMatch(/^todo-history: http:\/\/\S+/, 60_000);
      const baseUrl = (/todo-history: (http:\/\/[^\s]+)/.exec(line) as RegExpExecArray)[1] as string;
      load.setEndpoint({ baseUrl, incarnation });
      return { handle, incarnation };
    };
    try {
      await migrate(postbox.db, { set: todoHistoryMigrations });
      let app = await startApp();
      load.start();
      const recoveries: number[] = [];
      const historyResumes: Promise<number | undefined>[] = [];
      for (let kill = 0; kill < kills; kill++) {
        await waitFor(() => load.firstOkOf(app.incarnation) !== undefined, 30_000, 'a first acknowledged request', 10);
        await delay(randomBetween(runMs[0], runMs[1]));
        const since = await serverNow(postbox.db);
        const killedAt = performance.now();
        app.handle.signal('SIGKILL');
        await app.handle.exited;
        load.setEndpoint(undefined);
        app = await startApp();
        const restarted = app;
        await waitFor(() => load.firstOkOf(restarted.incarnation) !== undefined, 30_000, 'the restarted app to answer', 10);
        const recoveryMs = (load.firstOkOf(restarted.incarnation)?.endedAt ?? Number.NaN) - killedAt;
        recoveries.push(recoveryMs);
        // The history consumer of the restarted app resumes once the dead process's lease expires; watch for it until the next kill.
        historyResumes.push(watchHistoryResume(postbox, restarted, since, killedAt));
        context.log(`kill ${kill + 1}/${kills}: the restarted app answered ${Math.round(recoveryMs)} ms after the kill`);
      }
      await delay(randomBetween(runMs[0], runMs[1]));
      await load.stop();

      const catchUp = await waitForCatchUp(postbox.db, group, 60_000, 300_000);
      if (!catchUp.caughtUp) {
        violations.push(`the history consumer still had ${await groupLag(postbox.db, group)} events to read 60 s after the load stopped`);
      }
      // Lag 0 may come from the last app's very first batch: give its watcher time to see it before the lease is handed back.
      const watched = await Promise.race([Promise.all(historyResumes), delay(30_000).then(() => undefined)]);
      if (!watched) violations.push('the history consumer of the last start of the app did not commit within 30 s after catching up');
      const signalledAt = performance.now();
      app.handle.signal('SIGTERM');
      const exit = await app.handle.exited;
      const resumes = await Promise.all(historyResumes);
      if (exit.code !== 0)
        violations.push(`the app exited with ${exit.code ?? exit.signal} on SIGTERM: ${app.handle.outputTail.slice(-500)}`);

      const resumed = resumes.filter((ms) => ms !== undefined);
      const audit = await auditTodoHistory(postbox.db, topic, load.records);
      violations.push(...audit.violations);
      return {
        runs: recoveries.length,
        sent: audit.committed,
        received: audit.historyRows,
        lost: audit.lost,
        duplicated: audit.duplicated,
        maxRecoveryMs: recoveries.length > 0 ? Math.max(...recoveries) : 0,
        violations,
        notes: [
          ...audit.notes,
          describeDurations('first acknowledged request after a kill', recoveries),
          `${describeDurations('history consumer resumed after a kill', resumed)}; ${resumes.length - resumed.length} kills came before it had resumed`,
          `exit after the final SIGTERM: ${Math.round(exit.at - signalledAt)} ms`,
          ...(catchUp.heldBackBy ? [`catching up waited for ${catchUp.heldBackBy}`] : []),
        ],
      };
    } finally {
      await load.stop();
      await processes.killAll();
      await postbox.close(2_000);
    }
  },
};
