import { assertSchemaCurrent, type HealthCheck, type Postbox, type Router } from 'postbox';
import type { HistoryConfig } from '../config.js';
import { todoHistoryMigrations } from '../db/migration-set.js';

/** Readiness checks of the app, added to the library's (database, Postbox schema, groups). */
export function historyHealthChecks(postbox: Postbox, router: Router, history: HistoryConfig): () => Promise<HealthCheck[]> {
  return async () => {
    const checks: HealthCheck[] = [];
    try {
      await assertSchemaCurrent(postbox.db, todoHistoryMigrations);
      checks.push({ name: 'schema:todo-history', status: 'healthy' });
    } catch (error) {
      checks.push({ name: 'schema:todo-history', status: 'unhealthy', detail: (error as Error).message });
    }
    if (router.state !== 'running') {
      checks.push({ name: 'history-consumer', status: 'unhealthy', detail: `the router is ${router.state}` });
      return checks;
    }
    const [group] = await postbox.groupStatus(history.group);
    if (group && group.lagSeconds > history.maxLagSeconds) {
      checks.push({
        name: 'history-consumer',
        status: 'degraded',
        detail: `${group.lagMessages} events wait, the oldest for ${Math.round(group.lagSeconds)} s (threshold ${history.maxLagSeconds} s)`,
      });
    } else {
      checks.push({ name: 'history-consumer', status: 'healthy' });
    }
    return checks;
  };
}
