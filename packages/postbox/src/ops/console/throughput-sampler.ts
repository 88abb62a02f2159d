import { type GroupStatus, groupStatuses } from '../../consumers/status.js';
import type { LogPosition } from '../../log/position.js';
import { messagesPassed, type ReaderProgress, readableSince } from '../../log/throughput.js';
import type { Logger } from '../../observability/logger.js';
import { redactUrl } from '../../sql/connection-secrets.js';
import type { Executor } from '../../sql/database.js';
import { SampleRing } from './sample-ring.js';

export interface GroupSample {
  group: string;
  lagMessages: number;
  lagSeconds: number;
  /** Messages the group moved past since the sample before, and per second; null on its first sample. */
  handled: number | null;
  handledPerSecond: number | null;
}

export interface ThroughputSample {
  at: Date;
  /** Seconds since the sample before; null on the first. */
  seconds: number | null;
  /** Messages that became readable since the sample before (see readableSince), and per second; null on the first. */
  appended: number | null;
  appendedPerSecond: number | null;
  /** The groups furthest behind, at most maxGroups of them. */
  groups: GroupSample[];
}

export interface SamplerSettings {
  intervalMs: number;
  windowMs: number;
  maxGroups: number;
}

interface GroupCheckpoints {
  partitions: number;
  positions: Map<number, LogPosition>;
}

interface Previous {
  at: number;
  watermark: bigint;
  groups: Map<string, GroupCheckpoints>;
}

function checkpointsOf(group: GroupStatus): GroupCheckpoints {
  return {
    partitions: group.partitions.length,
    positions: new Map(group.partitions.map((partition) => [partition.partition, partition.checkpoint])),
  };
}

function furthestBehind(groups: readonly GroupStatus[], count: number): GroupStatus[] {
  return [...groups].sort((a, b) => b.lagMessages - a.lagMessages || a.group.localeCompare(b.group)).slice(0, count);
}

/** What each group moved through since the previous sample; a group that is new, or was repartitioned, is left out. */
function progressSince(previous: Previous | undefined, groups: readonly GroupStatus[]): ReaderProgress[] {
  if (!previous) return [];
  return groups.flatMap((group) => {
    const before = previous.groups.get(group.group);
    if (!before || before.partitions !== group.partitions.length) return [];
    const moves = group.partitions.flatMap((partition) => {
      const from = before.positions.get(partition.partition);
      return from ? [{ partition: partition.partition, from, to: partition.checkpoint }] : [];
    });
    return [{ key: group.group, topics: group.topics, partitions: group.partitions.length, moves }];
  });
}

/**
 * Every few seconds, records each group's lag and how fast it moves, and how fast messages become
 * readable in the log, in a ring that holds the last window of samples: the data behind the
 * console's charts. Samples run one at a time; one that fails is logged and skipped.
 */
export class ThroughputSampler {
  private readonly ring: SampleRing<ThroughputSample>;
  private previous: Previous | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** The reason the latest sample failed; null once one succeeds. */
  lastError: string | null = null;

  constructor(
    private readonly db: Executor,
    readonly settings: SamplerSettings,
    private readonly logger: Pick<Logger, 'warn'>,
  ) {
    this.ring = new SampleRing(Math.max(1, Math.ceil(settings.windowMs / settings.intervalMs)));
  }

  /** The most samples the ring keeps. */
  get capacity(): number {
    return this.ring.capacity;
  }

  start(): void {
    if (this.timer || this.running || this.stopped) return;
    this.schedule(0);
  }

  /** Stops the timer and waits for a sample under way, so that nothing queries the database afterwards. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  samples(): ThroughputSample[] {
    return this.ring.toArray();
  }

  /** Takes one sample now; the timer calls it, and tests may. */
  async sample(): Promise<void> {
    const at = Date.now();
    try {
      const statuses = await groupStatuses(this.db);
      const readable = await readableSince(this.db, this.previous?.watermark ?? null);
      const groups = furthestBehind(statuses, this.settings.maxGroups);
      const progress = progressSince(this.previous, groups);
      const passed = progress.length > 0 ? await messagesPassed(this.db, progress) : new Map<string, number>();
      const seconds = this.previous ? Math.max((at - this.previous.at) / 1_000, 0.001) : null;
      this.ring.push({
        at: new Date(at),
        seconds,
        appended: seconds === null ? null : readable.messages,
        appendedPerSecond: seconds === null ? null : readable.messages / seconds,
        groups: groups.map((group) => {
          const moved = seconds === null ? undefined : passed.get(group.group);
          return {
            group: group.group,
            lagMessages: group.lagMessages,
            lagSeconds: group.lagSeconds,
            handled: moved ?? null,
            handledPerSecond: moved === undefined || seconds === null ? null : moved / seconds,
          };
        }),
      });
      this.previous = { at, watermark: readable.watermark, groups: new Map(statuses.map((group) => [group.group, checkpointsOf(group)])) };
      this.lastError = null;
    } catch (error) {
      this.lastError = redactUrl(error instanceof Error ? error.message : String(error));
      this.logger.warn({ err: error }, 'the console could not take a throughput sample');
    }
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const started = Date.now();
      this.running = this.sample().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.schedule(Math.max(0, started + this.settings.intervalMs - Date.now()));
      });
    }, delayMs);
    this.timer.unref();
  }
}
