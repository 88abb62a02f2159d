import { groupStatuses } from '../consumers/status.js';
import { PostboxError } from '../errors/postbox-error.js';
import type { ProjectionRunner } from '../projections/projection-runner.js';
import type { Executor } from '../sql/database.js';

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
}

/** A consumer group to wait for, on a database (`postbox.db`). */
export interface GroupTarget {
  db: Executor;
  group: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves once the projection's active version (or the group) has applied every event committed so
 * far, that is once its lag is 0 and no rebuild is under way. Rejects with the projection's error as
 * soon as it shows `faulted`, and on timeout.
 */
export async function waitUntilCaughtUp(target: ProjectionRunner<any> | GroupTarget, options: WaitOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  let last = 'not started';
  for (;;) {
    if ('group' in target) {
      const [status] = await groupStatuses(target.db, target.group);
      if (status && status.lagMessages === 0) return;
      last = status
        ? `${status.lagMessages} messages behind${status.lastError ? `, last error: ${status.lastError}` : ''}`
        : 'no such group yet';
    } else {
      const status = await target.status().catch(() => undefined);
      if (status?.status === 'faulted') {
        throw new PostboxError('POSTBOX_ERR_PROJECTION_STATE', `Projection ${target.name} is faulted: ${status.lastError}`, {
          projection: target.name,
        });
      }
      if (status && status.lagEvents === 0 && !status.rebuild) return;
      last = status
        ? `${status.status}, ${status.lagEvents} events behind${status.rebuild ? `, rebuilding v${status.rebuild.version}` : ''}`
        : 'not registered yet';
    }
    if (Date.now() > deadline) {
      const name = 'group' in target ? `group ${target.group}` : `projection ${target.name}`;
      throw new PostboxError('POSTBOX_ERR_PROJECTION_STATE', `Timed out after ${timeoutMs} ms waiting for ${name} to catch up (${last}).`);
    }
    await sleep(intervalMs);
  }
}
