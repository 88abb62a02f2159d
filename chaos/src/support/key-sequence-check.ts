/** One delivered message, as the per-key check sees it. */
export interface KeyedDelivery {
  key: string;
  /** The message's place among the committed messages of its key: 1, 2, 3... */
  sequence: number;
  /** What makes this message itself (its log position, its id): a redelivery carries the same. */
  identity: string | number;
}

interface KeyState {
  next: number;
  /** The identity first delivered for each sequence number. */
  identities: (string | number | undefined)[];
}

export interface MissingReport {
  /** Committed messages never delivered. */
  lost: number;
  /** Deliveries of sequence numbers beyond what was committed for their key. */
  unexpected: number;
  examples: string[];
}

const maxExamples = 5;

/**
 * Checks that each key's messages arrive as 1, 2, 3... : a sequence number ahead of the next
 * expected one means a message of that key was skipped or overtaken (an order violation), one
 * behind it with the identity already seen is a redelivery (a duplicate).
 */
export class KeySequenceCheck {
  private readonly keys = new Map<string, KeyState>();
  deliveries = 0;
  duplicates = 0;
  outOfOrder = 0;
  readonly orderExamples: string[] = [];

  see(delivery: KeyedDelivery): void {
    this.deliveries += 1;
    let state = this.keys.get(delivery.key);
    if (!state) {
      state = { next: 1, identities: [] };
      this.keys.set(delivery.key, state);
    }
    const { sequence, identity } = delivery;
    const earlier = state.identities[sequence];
    if (earlier !== undefined) {
      if (earlier === identity) this.duplicates += 1;
      else this.orderViolation(`key ${delivery.key}: sequence ${sequence} delivered twice with different messages`);
      return;
    }
    state.identities[sequence] = identity;
    if (sequence === state.next) {
      state.next += 1;
      while (state.identities[state.next] !== undefined) state.next += 1;
      return;
    }
    if (sequence > state.next) {
      this.orderViolation(`key ${delivery.key}: sequence ${sequence} delivered while ${state.next} was expected`);
      state.next = sequence + 1;
      return;
    }
    this.orderViolation(`key ${delivery.key}: sequence ${sequence} delivered after ${state.next - 1}`);
  }

  /** Distinct messages delivered. */
  get distinct(): number {
    return this.deliveries - this.duplicates;
  }

  /** Compares what arrived with what committed: `committed` holds each key's number of committed messages. */
  missing(committed: ReadonlyMap<string, number>): MissingReport {
    const report: MissingReport = { lost: 0, unexpected: 0, examples: [] };
    for (const [key, count] of committed) {
      const identities = this.keys.get(key)?.identities ?? [];
      for (let sequence = 1; sequence <= count; sequence++) {
        if (identities[sequence] !== undefined) continue;
        report.lost += 1;
        if (report.examples.length < maxExamples) report.examples.push(`key ${key} sequence ${sequence} never delivered`);
      }
    }
    for (const [key, state] of this.keys) {
      const count = committed.get(key) ?? 0;
      for (let sequence = count + 1; sequence < state.identities.length; sequence++) {
        if (state.identities[sequence] === undefined) continue;
        report.unexpected += 1;
        if (report.examples.length < maxExamples) report.examples.push(`key ${key} sequence ${sequence} delivered but never committed`);
      }
    }
    return report;
  }

  private orderViolation(example: string): void {
    this.outOfOrder += 1;
    if (this.orderExamples.length < maxExamples) this.orderExamples.push(example);
  }
}
