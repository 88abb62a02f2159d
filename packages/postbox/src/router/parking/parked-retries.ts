import type { BetweenBatchesContext } from '../../consumers/consumer-options.js';
import type { Logger } from '../../observability/logger.js';
import { enqueue } from '../../outbox/enqueue.js';
import type { ParkedFailure } from '../../parking/parked-store.js';
import { dueParked, holdParked, type LaneRow, parkedLane, rescheduleParked, unpark, untilNextParked } from '../../parking/parked-store.js';
import type { Database, Executor } from '../../sql/database.js';
import type { HandlerContext, OutcomeHandler } from '../handler.js';
import { failuresOf, resumeFailures } from '../middleware/failures.js';
import type { ParkedAttempt, Parking } from '../middleware/park.js';
import type { SourceBatchContext } from '../route-source.js';
import type { RoutedMessage } from '../routed-message.js';
import { decidePark, type ParkingRules } from './park-decision.js';
import { fromParkedMessage } from './parked-routed-message.js';

export interface ParkedRetriesSettings {
  db: Database;
  rules: ParkingRules;
  transactional: boolean;
  /** The route's chain with this parking: its quick retries for a first attempt, one attempt when `again`. */
  chain(parking: Parking, again: boolean): OutcomeHandler;
  decode(message: RoutedMessage): RoutedMessage;
  context(batch: SourceBatchContext): HandlerContext;
  payloadLimitBytes: number;
  /** The longest a partition goes without looking at its parked messages. */
  pollIntervalMs: number;
  logger: Logger;
}

/** The parking of one parked message attempted again: whether it waits once more, and how. */
class AttemptParking implements Parking {
  failure: ParkedFailure | undefined;

  constructor(
    private readonly rules: ParkingRules,
    private readonly parkedBefore: number | undefined,
  ) {}

  park(message: RoutedMessage, error: Error): ParkedAttempt | undefined {
    const failures = failuresOf(message);
    this.failure = failures && decidePark(this.rules.options, failures, error, this.rules.retriable, this.parkedBefore);
    return this.failure && { attempts: this.failure.attempts, delayMs: this.failure.delayMs };
  }
}

/**
 * A partition's parked messages, attempted again by the partition's reader between its batches
 * (ConsumerOptions.betweenBatches), so that no batch of the partition runs meanwhile: a key's
 * parked messages are handled in log order, and a message of that key in a later batch, which
 * finds the key still parked, waits behind them. Every change to the parked rows passes the
 * partition's lease: in the transaction of the attempts when the route is transactional (the
 * handler's writes, dead letters and parked rows commit together, or none of them), otherwise in a
 * transaction of its own after each attempt.
 *
 * A key's rows are its queue: its first row is attempted when due; once handled (or dead-lettered,
 * with `release`) the next one is attempted at once, up to the route's park.batchSize a turn.
 */
export class ParkedRetries {
  constructor(private readonly settings: ParkedRetriesSettings) {}

  /** One turn; resolves to when the partition next has a parked message due. */
  async betweenBatches(turn: BetweenBatchesContext): Promise<Date> {
    const { db, rules, pollIntervalMs } = this.settings;
    const where = { group: rules.group, partition: turn.partition, partitions: turn.partitions };
    const limit = rules.options.batchSize;
    const due = await dueParked(db, where, limit);
    const keys = new Set<string>();
    let attempted = 0;
    for (const row of due) {
      if (attempted >= limit || turn.signal.aborted) break;
      if (row.key !== null) {
        if (keys.has(row.key)) continue;
        keys.add(row.key);
      }
      attempted += await this.runLane(row, limit - attempted, turn);
    }
    // More may be due: the next turn comes after the partition's next batch, so that batches go on too.
    if (attempted > 0 && (attempted >= limit || due.length >= limit)) return new Date();
    const untilNext = await untilNextParked(db, where);
    // A due row that could not be attempted (behind a held one) must not make the reader spin.
    const waitMs = attempted === 0 && due.length > 0 ? pollIntervalMs : Math.min(untilNext ?? pollIntervalMs, pollIntervalMs);
    return new Date(Date.now() + waitMs);
  }

  /** The queue of the key of `head`, in order; returns how many messages were attempted. */
  private async runLane(head: LaneRow, budget: number, turn: BetweenBatchesContext): Promise<number> {
    const { db, rules, transactional } = this.settings;
    if (!transactional) return this.walk(await parkedLane(db, rules.group, head, budget, false), undefined, turn);
    return db.transaction(async (tx) => {
      const attempted = await this.walk(await parkedLane(tx, rules.group, head, budget, true), tx, turn);
      await turn.fence(tx);
      return attempted;
    });
  }

  private async walk(rows: readonly LaneRow[], tx: Executor | undefined, turn: BetweenBatchesContext): Promise<number> {
    const hold = this.settings.rules.options.onDeadLetter === 'hold';
    let attempted = 0;
    for (const row of rows) {
      if (turn.signal.aborted) break;
      if (row.status === 'dead_lettered') {
        // Held until its dead letter is retried or discarded; a route that now says `release` lets it go.
        if (hold) break;
        await this.settle(tx, turn, (db) => unpark(db, row.id));
        continue;
      }
      if (row.status === 'waiting' && !row.due) break;
      attempted += 1;
      if (!(await this.attempt(row, tx, turn))) break;
    }
    return attempted;
  }

  /** Attempts one parked message; true when it is out of the way of the next one of its key. */
  private async attempt(row: LaneRow, tx: Executor | undefined, turn: BetweenBatchesContext): Promise<boolean> {
    const { rules } = this.settings;
    // A follower has never been attempted: it gets the route's quick retries. A waiting one gets one attempt.
    const again = row.status === 'waiting';
    const message = this.settings.decode(fromParkedMessage(row));
    if (again && row.attempts > 0) {
      resumeFailures(message, {
        attempts: row.attempts,
        firstFailedAt: row.firstFailedAt ?? row.parkedAt,
        lastFailedAt: row.lastFailedAt ?? row.parkedAt,
      });
    }
    const parking = new AttemptParking(rules, again ? row.parkedAttempts : undefined);
    const outcome = await this.settings.chain(parking, again)(message, this.context(tx, turn));
    if (outcome === 'parked' && parking.failure) {
      const failure = parking.failure;
      await this.settle(tx, turn, (db) => rescheduleParked(db, row.id, failure));
      return false;
    }
    if (outcome === 'dead_lettered' && rules.options.onDeadLetter === 'hold') {
      await this.settle(tx, turn, (db) => holdParked(db, row.id));
      return false;
    }
    await this.settle(tx, turn, (db) => unpark(db, row.id));
    this.settings.logger.debug({ group: rules.group, messageId: row.messageId, key: row.key, outcome }, 'parked message done');
    return true;
  }

  /** Writes a change of the parked rows: on the lane's transaction, or fenced in one of its own. */
  private async settle(tx: Executor | undefined, turn: BetweenBatchesContext, write: (db: Executor) => Promise<void>): Promise<void> {
    if (tx) return write(tx);
    await this.settings.db.transaction(async (own) => {
      await write(own);
      await turn.fence(own);
    });
  }

  private context(tx: Executor | undefined, turn: BetweenBatchesContext): HandlerContext {
    const { db, payloadLimitBytes } = this.settings;
    const limits = { payloadLimitBytes };
    return this.settings.context({
      tx,
      partition: turn.partition,
      signal: turn.signal,
      publish: (messages) => (tx ? enqueue(tx, messages, limits) : db.transaction((own) => enqueue(own, messages, limits))),
    });
  }
}
