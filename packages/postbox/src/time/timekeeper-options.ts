import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { defaults } from '../config/defaults.js';
import { positiveInteger } from '../consumers/consumer-options.js';
import { ValidationError } from '../errors/postbox-error.js';
import { type Logger, silentLogger } from '../observability/logger.js';

export interface TimekeeperOptions {
  /** Names this process in the lease; defaults to host, pid and a random suffix. */
  owner?: string;
  /** How long the lease lasts unrenewed: after a crash, another process takes over within about this long. */
  leaseTtlMs?: number;
  /** The longest the holder sleeps with nothing due (its fallback poll); at most a third of the lease. */
  pollIntervalMs?: number;
  /** How often a process without the lease tries to take it. */
  standbyIntervalMs?: number;
  /** Due messages moved per transaction. */
  moveBatchSize?: number;
  /** Schedules whose due ticks are appended per transaction. */
  scheduleBatchSize?: number;
  /** A tick found later than this was missed; its schedule's `missed` policy decides. */
  missedTickGraceMs?: number;
  /** The most missed ticks a schedule of `missed: 'all'` appends at once. */
  maxCatchUpTicks?: number;
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  logger?: Logger;
  /** Called with every failure of a round (the round is retried after a delay). */
  onError?: (error: unknown) => void;
}

export type ResolvedTimekeeperOptions = Required<Omit<TimekeeperOptions, 'onError'>> & Pick<TimekeeperOptions, 'onError'>;

export function resolveTimekeeperOptions(options: TimekeeperOptions = {}): ResolvedTimekeeperOptions {
  const tk = defaults.timekeeper;
  const resolved: ResolvedTimekeeperOptions = {
    owner: options.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    leaseTtlMs: positiveInteger('leaseTtlMs', options.leaseTtlMs, tk.leaseTtlMs),
    pollIntervalMs: positiveInteger('pollIntervalMs', options.pollIntervalMs, tk.pollIntervalMs),
    standbyIntervalMs: positiveInteger('standbyIntervalMs', options.standbyIntervalMs, tk.standbyIntervalMs),
    moveBatchSize: positiveInteger('moveBatchSize', options.moveBatchSize, tk.moveBatchSize),
    scheduleBatchSize: positiveInteger('scheduleBatchSize', options.scheduleBatchSize, tk.scheduleBatchSize),
    missedTickGraceMs: positiveInteger('missedTickGraceMs', options.missedTickGraceMs, tk.missedTickGraceMs),
    maxCatchUpTicks: positiveInteger('maxCatchUpTicks', options.maxCatchUpTicks, tk.maxCatchUpTicks),
    retryDelayMs: positiveInteger('retryDelayMs', options.retryDelayMs, tk.retryDelayMs),
    maxRetryDelayMs: positiveInteger('maxRetryDelayMs', options.maxRetryDelayMs, tk.maxRetryDelayMs),
    logger: options.logger ?? silentLogger,
    onError: options.onError,
  };
  if (typeof resolved.owner !== 'string' || resolved.owner.trim() === '') {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', 'owner must be a non-empty string.', { option: 'owner' });
  }
  // The holder renews its lease each time it wakes: it must wake several times within one lease.
  if (resolved.pollIntervalMs * 3 > resolved.leaseTtlMs) {
    throw new ValidationError(
      'POSTBOX_ERR_BAD_OPTION',
      `pollIntervalMs (${resolved.pollIntervalMs}) must be at most a third of leaseTtlMs (${resolved.leaseTtlMs}): the holder renews its lease each time it wakes.`,
      { option: 'pollIntervalMs' },
    );
  }
  return resolved;
}
