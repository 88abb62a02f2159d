import { type NewParkedRow, parkedKeys, parkMessages } from '../../parking/parked-store.js';
import type { Executor } from '../../sql/database.js';
import type { Outcome } from '../handler.js';
import { failuresOf } from '../middleware/failures.js';
import type { ParkedAttempt, Parking } from '../middleware/park.js';
import type { RoutedMessage } from '../routed-message.js';
import { decidePark, type ParkingRules } from './park-decision.js';
import { toParkedCopy } from './parked-routed-message.js';

/**
 * Parking within one batch of a route. A key is held when the group already has parked messages of
 * it (read once, when the batch starts), or once a message of it parked in this batch: the batch's
 * later messages of a held key are parked behind, unattempted. The rows are written together when
 * the batch is through: in its transaction, or in the one that stores its checkpoint (see Router.writeParked).
 */
export class ParkedBatch implements Parking {
  private readonly rows: NewParkedRow[] = [];

  private constructor(
    private readonly rules: ParkingRules,
    private readonly held: Set<string>,
    /** The message as the log holds it, for each message as the route decoded it. */
    private readonly originals: ReadonlyMap<RoutedMessage, RoutedMessage>,
  ) {}

  /** `decoded[i]` is `messages[i]` as the route decoded it; db reads the parked keys (the batch's transaction, if any). */
  static async open(
    rules: ParkingRules,
    db: Executor,
    messages: readonly RoutedMessage[],
    decoded: readonly RoutedMessage[],
  ): Promise<ParkedBatch> {
    const keys = [...new Set(messages.map((message) => message.key).filter((key): key is string => key !== null))];
    const held = new Set(await parkedKeys(db, rules.group, keys));
    return new ParkedBatch(rules, held, new Map(decoded.map((message, index) => [message, messages[index] as RoutedMessage])));
  }

  /** Whether the message must wait behind an earlier message of its key. */
  holds(message: RoutedMessage): boolean {
    return message.key !== null && this.held.has(message.key);
  }

  /** Parks a message of a held key behind the earlier ones, unattempted. */
  follow(message: RoutedMessage): void {
    this.stage(message, 'follower');
  }

  park(message: RoutedMessage, error: Error): ParkedAttempt | undefined {
    const failures = failuresOf(message);
    if (!failures) return undefined;
    const failure = decidePark(this.rules.options, failures, error, this.rules.retriable, undefined);
    if (!failure) return undefined;
    this.stage(message, 'waiting', failure);
    return { attempts: failure.attempts, delayMs: failure.delayMs };
  }

  /** What the chain did with a message: one that went to dead letters holds its key when the route says `hold`. */
  settled(message: RoutedMessage, outcome: Outcome): void {
    if (outcome === 'dead_lettered' && this.rules.options.onDeadLetter === 'hold' && message.key !== null) {
      this.stage(message, 'dead_lettered');
    }
  }

  get size(): number {
    return this.rows.length;
  }

  /** Writes the rows staged, on db: the batch's transaction, or the one that stores its checkpoint. */
  async write(db: Executor): Promise<void> {
    await parkMessages(db, this.rows);
  }

  private stage(message: RoutedMessage, status: NewParkedRow['status'], failure?: NewParkedRow['failure']): void {
    const original = this.originals.get(message) ?? message;
    this.rows.push({ group: this.rules.group, handler: this.rules.handler, copy: toParkedCopy(original), status, failure });
    if (message.key !== null) this.held.add(message.key);
  }
}
