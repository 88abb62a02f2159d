import type { Executor } from 'postbox';
import { committedByAnotherOwner, describeGroupRow, groupLag, groupLease } from './consumer-group-row.js';

/** A lease a pool of processes competes for, as the parent sees it in the database. */
export interface LeaseWatch {
  /** What is held, in words: "group payments", "the timekeeper lease". */
  label: string;
  /** The process holding the lease now (it has not expired), or null. */
  owner(): Promise<string | null>;
  /** True once a process other than formerOwner holds the lease and has done its work since `since` (server clock). */
  workedSince(formerOwner: string, since: Date): Promise<boolean>;
  /** Work waiting for the holder now (messages past a checkpoint, messages overdue). */
  backlog(): Promise<number>;
  /** The lease's rows in words, for a report of a lease no one took over. */
  describe(): Promise<string>;
}

/** A consumer group's lease: work done is a checkpoint committed. */
export function groupLeaseWatch(db: Executor, group: string): LeaseWatch {
  return {
    label: `group ${group}`,
    owner: async () => (await groupLease(db, group))?.owner ?? null,
    workedSince: (formerOwner, since) => committedByAnotherOwner(db, group, formerOwner, since),
    backlog: () => groupLag(db, group),
    describe: () => describeGroupRow(db, group),
  };
}
