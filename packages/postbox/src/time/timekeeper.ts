import { defaults } from '../config/defaults.js';
import { Wakeup } from '../consumers/wakeup.js';
import { LeaseLostError } from '../errors/postbox-error.js';
import { acquireLease, releaseLease, renewLease, setLeaseWake } from '../leases/lease-store.js';
import { moveDueMessages } from '../log/move-due.js';
import type { Logger } from '../observability/logger.js';
import type { Database, Executor } from '../sql/database.js';
import { appendDueTicks } from './schedule-ticks.js';
import { type ResolvedTimekeeperOptions, resolveTimekeeperOptions, type TimekeeperOptions } from './timekeeper-options.js';

export type TimekeeperState = 'idle' | 'standby' | 'active' | 'stopping' | 'stopped';

/** When the holder looks next: in how many milliseconds, and whether something is due already. */
interface WakePlan {
  sleepMs: number;
  dueNow: boolean;
}

const leaseName = defaults.timekeeper.leaseName;

/**
 * Moves scheduled messages into the log when they fall due, and appends the ticks of schedules.
 * Every process may run one; one per database at a time holds the timekeeper lease and works, the
 * others stand by and take over when it stops (at once) or dies (once its lease runs out).
 *
 * The holder sleeps until the next message or tick is due, at most pollIntervalMs (the fallback
 * poll, and its lease renewal). It records when it will wake in the lease row: a writer whose message
 * is due sooner sends a NOTIFY that wakes it. Each move is one transaction fenced by a renewal of the
 * lease, so a holder that lost its lease moves nothing, and a crash mid-move moves nothing twice.
 */
export class Timekeeper {
  private readonly options: ResolvedTimekeeperOptions;
  private readonly logger: Logger;
  private readonly wakeup = new Wakeup();
  private stateValue: TimekeeperState = 'idle';
  private holding = false;
  private starting: Promise<void> | undefined;
  private loop: Promise<void> | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  /** One function, so that subscribing again after a failed LISTEN never adds a second handler. */
  private readonly wake = () => this.wakeup.wake();
  private movedCount = 0;
  private ticksCount = 0;

  constructor(
    private readonly db: Database,
    options: TimekeeperOptions = {},
  ) {
    this.options = resolveTimekeeperOptions(options);
    this.logger = this.options.logger.child({ component: 'timekeeper' });
  }

  get state(): TimekeeperState {
    return this.stateValue;
  }

  get owner(): string {
    return this.options.owner;
  }

  /** Messages this timekeeper moved into the log since it started. */
  get moved(): number {
    return this.movedCount;
  }

  /** Tick messages this timekeeper appended since it started. */
  get ticksAppended(): number {
    return this.ticksCount;
  }

  /** Listens for wake-ups and starts competing for the lease; resolves once it runs (as holder or standby). */
  start(): Promise<void> {
    this.starting ??= this.begin();
    return this.starting;
  }

  private async begin(): Promise<void> {
    this.stateValue = 'standby';
    await this.listen();
    this.loop = this.run();
  }

  /** Subscribes to wake-ups; when the database cannot be reached, the rounds poll and try again. */
  private async listen(): Promise<void> {
    try {
      this.unlisten = await this.db.listen(defaults.timekeeper.channel, this.wake, this.wake);
    } catch (error) {
      this.report(error);
    }
  }

  /** Finishes the move in hand, hands the lease back (a standby takes it at once) and stops. */
  async stop(): Promise<void> {
    await this.starting?.catch(() => undefined);
    if (this.stateValue !== 'standby' && this.stateValue !== 'active') return;
    this.stateValue = 'stopping';
    this.wakeup.wake();
    await this.loop;
    await this.unlisten?.().catch(() => undefined);
    if (this.holding) {
      this.holding = false;
      await releaseLease(this.db, leaseName, this.options.owner, defaults.timekeeper.channel).catch((error) => this.report(error));
    }
    this.stateValue = 'stopped';
    this.starting = undefined;
  }

  private get running(): boolean {
    return this.stateValue === 'standby' || this.stateValue === 'active';
  }

  private async run(): Promise<void> {
    let retryDelayMs = this.options.retryDelayMs;
    while (this.running) {
      // Cleared before looking, so that a NOTIFY arriving meanwhile cuts the sleep after it short.
      this.wakeup.consume();
      if (!this.unlisten) await this.listen();
      let sleepMs: number;
      try {
        sleepMs = await this.round();
        retryDelayMs = this.options.retryDelayMs;
      } catch (error) {
        if (error instanceof LeaseLostError) {
          this.loseLease();
          sleepMs = this.options.standbyIntervalMs;
        } else {
          this.report(error);
          sleepMs = retryDelayMs;
          retryDelayMs = Math.min(retryDelayMs * 2, this.options.maxRetryDelayMs);
        }
      }
      if (!this.running) return;
      if (sleepMs > 0) await this.wakeup.wait(sleepMs);
    }
  }

  /** One look: takes the lease if free, does what is due, and says how long to sleep. */
  private async round(): Promise<number> {
    if (!this.holding) {
      if (!(await acquireLease(this.db, leaseName, this.options.owner, this.options.leaseTtlMs))) return this.options.standbyIntervalMs;
      this.holding = true;
      if (this.running) this.stateValue = 'active';
      this.logger.info(
        { owner: this.options.owner },
        'timekeeper took the lease: this process moves scheduled messages and schedule ticks',
      );
    }
    const first = await this.plan();
    if (!first.dueNow) return first.sleepMs;
    const progress = (await this.moveDue()) + (await this.appendTicks());
    const after = await this.plan();
    // Due rows it could not take (locked by a cancel still open) must not make it spin.
    return after.dueNow && progress === 0 ? this.options.pollIntervalMs : after.sleepMs;
  }

  /** Renews the lease in the transaction, or rolls it back: the row stays locked until commit, so nobody takes over mid-move. */
  private async fence(tx: Executor): Promise<void> {
    if (!(await renewLease(tx, leaseName, this.options.owner, this.options.leaseTtlMs))) {
      throw new LeaseLostError('POSTBOX_ERR_LEASE_LOST', 'Another process took the timekeeper lease; this round was rolled back.');
    }
  }

  private plan(): Promise<WakePlan> {
    return this.db.transaction(async (tx) => {
      await this.fence(tx);
      const { rows } = await tx.query<{ message_in: number | null; tick_in: number | null }>(
        `select (extract(epoch from (select min(due_at) from postbox.scheduled_messages) - clock_timestamp()) * 1000)::float8 as message_in,
                (extract(epoch from (select min(next_tick_at) from postbox.schedules where status = 'active') - clock_timestamp()) * 1000)::float8 as tick_in`,
      );
      const row = rows[0];
      const soonest = Math.min(row?.message_in ?? Number.POSITIVE_INFINITY, row?.tick_in ?? Number.POSITIVE_INFINITY);
      const sleepMs = Math.max(0, Math.min(this.options.pollIntervalMs, Math.ceil(soonest)));
      await setLeaseWake(tx, leaseName, this.options.owner, sleepMs);
      return { sleepMs, dueNow: soonest <= 0 };
    });
  }

  /** Moves due messages a batch per transaction until none is left; returns how many it took off the waiting list. */
  private async moveDue(): Promise<number> {
    const batchSize = this.options.moveBatchSize;
    let taken = 0;
    for (;;) {
      const result = await this.db.transaction(async (tx) => {
        await this.fence(tx);
        return moveDueMessages(tx, batchSize);
      });
      this.movedCount += result.moved;
      taken += result.moved + result.skipped;
      if (result.skipped > 0) {
        this.logger.warn(
          { skipped: result.skipped },
          'due messages whose id was already in the log were taken off the waiting list, not appended again',
        );
      }
      if (result.moved + result.skipped < batchSize || !this.running) return taken;
    }
  }

  /** Appends the due ticks of schedules, a batch of schedules per transaction; returns how many schedules it moved on. */
  private async appendTicks(): Promise<number> {
    const options = {
      batchSize: this.options.scheduleBatchSize,
      graceMs: this.options.missedTickGraceMs,
      maxCatchUpTicks: this.options.maxCatchUpTicks,
      logger: this.logger,
    };
    let schedules = 0;
    for (;;) {
      const round = await this.db.transaction(async (tx) => {
        await this.fence(tx);
        return appendDueTicks(tx, options);
      });
      this.ticksCount += round.appended;
      schedules += round.schedules;
      if (round.schedules < options.batchSize || !this.running) return schedules;
    }
  }

  private loseLease(): void {
    this.holding = false;
    if (this.running) this.stateValue = 'standby';
    this.logger.warn({ owner: this.options.owner }, 'timekeeper lost its lease to another process; standing by');
  }

  private report(error: unknown): void {
    this.logger.error({ err: error }, 'timekeeper round failed; retrying');
    this.options.onError?.(error);
  }
}
