import type { RoutedMessage } from '../routed-message.js';

/** The failure history of one message within one delivery, shared by retry and dead letter. */
export interface FailureRecord {
  attempts: number;
  firstFailedAt: Date;
  lastFailedAt: Date;
}

const records = new WeakMap<RoutedMessage, FailureRecord>();

export function recordFailure(message: RoutedMessage): FailureRecord {
  const now = new Date();
  const record = records.get(message) ?? { attempts: 0, firstFailedAt: now, lastFailedAt: now };
  record.attempts += 1;
  record.lastFailedAt = now;
  records.set(message, record);
  return record;
}

export function failuresOf(message: RoutedMessage): FailureRecord | undefined {
  return records.get(message);
}

export function clearFailures(message: RoutedMessage): void {
  records.delete(message);
}

/** Carries on a failure history from an earlier delivery (a parked message attempted again), so that it keeps counting. */
export function resumeFailures(message: RoutedMessage, record: FailureRecord): void {
  records.set(message, { ...record });
}
