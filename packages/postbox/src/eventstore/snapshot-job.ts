import { defaults } from '../config/defaults.js';
import { ValidationError } from '../errors/postbox-error.js';
import { streamsNeedingSnapshots } from '../log/streams.js';
import type { Logger } from '../observability/logger.js';
import type { Executor } from '../sql/database.js';
import { type AggregateDefinition, snapshotSchemaVersion } from './aggregate.js';
import { aggregateOn, storeSnapshot } from './aggregate-stream.js';

export interface CreateSnapshotsOptions {
  /** The category to go through; the aggregate's own category by default. */
  category?: string;
  /** Streams whose snapshot is at least this many events behind, or missing, get a new one. */
  every?: number;
  /** Streams looked at per query. */
  batchSize?: number;
  /** Stop after this many snapshots. */
  limit?: number;
  logger?: Logger;
  signal?: AbortSignal;
}

export interface CreateSnapshotsResult {
  /** Streams that needed a snapshot. */
  examined: number;
  created: number;
  failed: number;
}

/**
 * Creates snapshots in bulk for the streams of a category whose snapshot is at least `every` events
 * behind (a missing one counts as at version 0), of another schema version, or damaged. Tombstoned and archived streams are
 * skipped. It takes the aggregate definition because only its evolve function can build the state.
 */
export async function createSnapshots(
  db: Executor,
  aggregate: AggregateDefinition,
  options: CreateSnapshotsOptions = {},
): Promise<CreateSnapshotsResult> {
  const category = options.category ?? aggregate.category;
  if (!category) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `Give a category: aggregate ${aggregate.name} does not name one.`, {
      option: 'category',
    });
  }
  const every = options.every ?? policyEvery(aggregate) ?? defaults.eventStore.snapshotEvery;
  const batchSize = options.batchSize ?? defaults.eventStore.snapshotJobBatchSize;
  for (const [name, value] of [
    ['every', every],
    ['batchSize', batchSize],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `${name} must be a positive integer (got ${String(value)}).`, { option: name });
    }
  }
  const snapshotOptions = aggregate.snapshots === false ? {} : (aggregate.snapshots ?? {});
  const schemaVersion = snapshotSchemaVersion(snapshotOptions);
  const result: CreateSnapshotsResult = { examined: 0, created: 0, failed: 0 };
  let after = '';
  for (;;) {
    if (options.signal?.aborted) return result;
    const streamIds = await streamsNeedingSnapshots(db, { category, name: aggregate.name, every, schemaVersion, after, limit: batchSize });
    for (const streamId of streamIds) {
      if (options.limit !== undefined && result.created >= options.limit) return result;
      result.examined += 1;
      try {
        const loaded = await aggregateOn(db, streamId, { ...aggregate, snapshots: snapshotOptions, saveSnapshots: false });
        if (await storeSnapshot(db, aggregate.name, snapshotOptions, loaded, true)) result.created += 1;
      } catch (error) {
        result.failed += 1;
        options.logger?.warn({ err: error, streamId: streamId, snapshot: aggregate.name }, 'snapshot could not be created');
      }
    }
    const last = streamIds.at(-1);
    if (last === undefined || streamIds.length < batchSize) return result;
    after = last;
  }
}

function policyEvery(aggregate: AggregateDefinition): number | undefined {
  const policy = aggregate.snapshots ? aggregate.snapshots.policy : undefined;
  return policy && typeof policy !== 'function' ? policy.every : undefined;
}

export interface SnapshotJob {
  /** Resolves once a run in progress has finished. */
  stop(): Promise<void>;
}

/** Runs createSnapshots on a timer (hourly by default) until stopped. */
export function startSnapshotJob(
  db: Executor,
  aggregate: AggregateDefinition,
  options: CreateSnapshotsOptions & { intervalMs?: number } = {},
): SnapshotJob {
  const controller = new AbortController();
  let running: Promise<unknown> = Promise.resolve();
  const run = () => {
    running = createSnapshots(db, aggregate, { ...options, signal: controller.signal }).then(
      (result) => options.logger?.info({ job: 'snapshots', snapshot: aggregate.name, result }, 'snapshot job ran'),
      (error) => options.logger?.error({ err: error, job: 'snapshots', snapshot: aggregate.name }, 'snapshot job failed'),
    );
  };
  const timer = setInterval(run, options.intervalMs ?? defaults.eventStore.snapshotJobIntervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      controller.abort();
      await running;
    },
  };
}
