import type { CronTicks } from './cron.js';

/** What a timekeeper that finds ticks long past appends: none of them, the latest, or each of them. */
export type MissedPolicy = 'skip' | 'last' | 'all';

export const missedPolicies: readonly MissedPolicy[] = ['skip', 'last', 'all'];

export interface DueTicks {
  /** The ticks to append now, oldest first. */
  ticks: Date[];
  /** The first tick was later than the grace: nothing ran at its time, and the policy chose. */
  missed: boolean;
  /** `all` found more missed ticks than its cap: the earliest were left out. */
  capped: boolean;
  /** The earliest tick not appended, to be due next; null when the expression has none left. */
  next: Date | null;
}

export interface DueTickRules {
  policy: MissedPolicy;
  /** A first due tick older than this, at `now`, was missed. */
  graceMs: number;
  /** The most ticks appended in one go. */
  maxTicks: number;
}

/**
 * The ticks of a schedule due at `now`, from `firstDue` (its earliest tick not yet appended). Ticks
 * found within the grace are appended, each of them: a timekeeper that was busy, or a takeover after
 * a crash, loses none. When the first was later than that, nothing ran at their time, and the policy
 * decides: `skip` appends none and waits for the next future tick, `last` appends the latest one,
 * `all` appends each of them, up to maxTicks (the latest, so the ones left out are the oldest).
 */
export function dueTicks(cron: CronTicks, firstDue: Date, now: Date, rules: DueTickRules): DueTicks {
  if (firstDue.getTime() > now.getTime()) return { ticks: [], missed: false, capped: false, next: firstDue };
  if (now.getTime() - firstDue.getTime() <= rules.graceMs) {
    const ticks: Date[] = [];
    let tick: Date | null = firstDue;
    while (tick && tick.getTime() <= now.getTime() && ticks.length < rules.maxTicks) {
      ticks.push(tick);
      tick = cron.next(tick);
    }
    return { ticks, missed: false, capped: false, next: tick };
  }
  const next = cron.next(now);
  if (rules.policy === 'skip') return { ticks: [], missed: true, capped: false, next };
  if (rules.policy === 'last') return { ticks: cron.latest(1, now), missed: true, capped: false, next };
  const latest = cron.latest(rules.maxTicks + 1, now).filter((tick) => tick.getTime() >= firstDue.getTime());
  const capped = latest.length > rules.maxTicks;
  return { ticks: latest.slice(0, rules.maxTicks).reverse(), missed: true, capped, next };
}
