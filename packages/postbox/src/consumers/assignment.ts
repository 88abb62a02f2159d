/** How the group looks to one member, from its heartbeat. */
export interface AssignmentView {
  partitions: number;
  /** The live members, this one among them. */
  members: readonly string[];
  /** The owner of each partition whose lease is live. */
  owners: ReadonlyMap<number, string>;
  me: string;
}

/** What one member should do to bring the group to its share: partitions to hand back and to take. */
export interface AssignmentPlan {
  /** How many partitions this member should hold. */
  quota: number;
  /** Partitions it holds beyond its quota, to hand back once their batch in hand has committed. */
  release: number[];
  /** Free partitions to take, in order of preference, and how many of them. */
  acquire: number[];
  acquireCount: number;
}

/**
 * Spreads the partitions evenly over the live members, moving as few as it can: with N partitions
 * and M members, every member's share is floor(N / M), and the N mod M members that hold the most
 * now (by name among equals) get one more. Every member computes the same shares from the same
 * view, so a member only hands back what another is meant to take, and a partition keeps its owner
 * while the share allows: a standby does not take over a single partition that has one.
 */
export function planAssignment(view: AssignmentView): AssignmentPlan {
  const members = view.members.includes(view.me) ? [...view.members] : [...view.members, view.me];
  const held = new Map<string, number[]>(members.map((member) => [member, []]));
  for (const [partition, owner] of view.owners) held.get(owner)?.push(partition);
  const ranked = [...members].sort((a, b) => (held.get(b)?.length ?? 0) - (held.get(a)?.length ?? 0) || (a < b ? -1 : a > b ? 1 : 0));
  const base = Math.floor(view.partitions / members.length);
  const extra = view.partitions % members.length;
  const quota = base + (ranked.indexOf(view.me) < extra ? 1 : 0);
  const mine = [...(held.get(view.me) ?? [])].sort((a, b) => a - b);
  const release = mine.length > quota ? mine.slice(quota) : [];
  const acquire: number[] = [];
  for (let partition = 0; partition < view.partitions; partition++) if (!view.owners.has(partition)) acquire.push(partition);
  return { quota, release, acquire, acquireCount: Math.max(0, quota - mine.length) };
}
