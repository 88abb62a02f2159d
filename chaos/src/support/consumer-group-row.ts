import type { Executor } from 'postbox';

export interface GroupLease {
  /** The process holding the group now (its lease has not expired), or null. */
  owner: string | null;
  checkpoint: string;
}

/** Who holds a consumer group now, and its checkpoint as `transaction_id/global_position`. */
export async function groupLease(db: Executor, group: string): Promise<GroupLease | undefined> {
  const { rows } = await db.query<{ owner: string | null; checkpoint: string }>(
    `select case when lease_expires_at > now() then lease_owner end as owner,
            checkpoint_transaction_id::text || '/' || checkpoint_position::text as checkpoint
     from postbox.group_partitions where group_name = $1 and partition = 0`,
    [group],
  );
  return rows[0];
}

/** The database server's clock now: commits are compared with it, not with this process's clock. */
export async function serverNow(db: Executor): Promise<Date> {
  const { rows } = await db.query<{ now: Date }>('select clock_timestamp() as now');
  return rows[0]?.now as Date;
}

/**
 * True once a process other than `formerOwner` holds the group and has committed a checkpoint
 * since `since` (server clock). A failed batch sets last_error and does not count; a commit by
 * the former owner that was still in flight when it died does not count either.
 */
export async function committedByAnotherOwner(db: Executor, group: string, formerOwner: string, since: Date): Promise<boolean> {
  const { rows } = await db.query(
    `select 1 from postbox.group_partitions
     where group_name = $1 and partition = 0 and lease_owner is not null and lease_owner <> $2 and updated_at >= $3 and last_error is null`,
    [group, formerOwner, since],
  );
  return rows.length > 0;
}

/** Messages of the group's topics past its checkpoint. */
export async function groupLag(db: Executor, group: string): Promise<number> {
  const { rows } = await db.query<{ lag: number }>(
    `select count(*)::int as lag
     from postbox.consumer_groups g
     join postbox.group_partitions p on p.group_name = g.group_name
     join postbox.messages m on m.topic = any(g.topics) and p.partition = postbox.partition_of(m.bucket, g.partitions)
      and (m.transaction_id, m.global_position) > (p.checkpoint_transaction_id, p.checkpoint_position)
     where g.group_name = $1`,
    [group],
  );
  return Number(rows[0]?.lag ?? 0);
}

/** The pid in a default lease owner (`host:pid:suffix`), which is how a parent finds the process holding a group. */
export function ownerPid(owner: string): number | undefined {
  const pid = Number(owner.split(':').at(-2));
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** The group's row in words, for a report of a group that did not recover. */
export async function describeGroupRow(db: Executor, group: string): Promise<string> {
  const { rows } = await db.query<Record<string, unknown>>(
    `select p.partition, p.lease_owner, p.lease_expires_at > now() as lease_active, p.last_error, p.updated_at, g.last_seen_at,
            p.checkpoint_transaction_id::text || '/' || p.checkpoint_position::text as checkpoint
     from postbox.consumer_groups g join postbox.group_partitions p on p.group_name = g.group_name
     where g.group_name = $1 order by p.partition`,
    [group],
  );
  return JSON.stringify(rows);
}

/**
 * The oldest open transaction on the whole server that holds a transaction id, in words: readers
 * of every database wait for it (the visibility watermark is server-wide).
 */
export async function describeOldestTransaction(db: Executor): Promise<string> {
  const { rows } = await db.query<Record<string, unknown>>(
    `select datname, state, round(extract(epoch from now() - xact_start)::numeric, 1) as open_seconds, left(query, 120) as query
     from pg_stat_activity where backend_xid is not null and pid <> pg_backend_pid()
     order by xact_start limit 1`,
  );
  return rows[0] ? JSON.stringify(rows[0]) : 'none';
}

/**
 * A transaction that began before `since` (server clock) and still holds a transaction id: while
 * it is open, no reader on the server sees rows committed after it began. Undefined when none.
 */
export async function readersHeldBackSince(db: Executor, since: Date): Promise<string | undefined> {
  const { rows } = await db.query<{ datname: string; open_seconds: string }>(
    `select datname, round(extract(epoch from now() - xact_start)::numeric, 1)::text as open_seconds
     from pg_stat_activity where backend_xid is not null and pid <> pg_backend_pid() and xact_start < $1
     order by xact_start limit 1`,
    [since],
  );
  const row = rows[0];
  return row ? `a transaction open for ${row.open_seconds} s in database ${row.datname}` : undefined;
}

export interface CatchUp {
  caughtUp: boolean;
  /** Set when the wait went on past its timeout because a transaction elsewhere held readers back. */
  heldBackBy?: string;
}

export interface HeldBackWait {
  done: boolean;
  /** performance.now() when done() was first seen true, or when the wait gave up. */
  at: number;
  /** Set when the wait went on past timeoutMs because a transaction older than `since` held readers back. */
  heldBackBy?: string;
}

/** How long a wait goes on after the transaction that held readers back past its timeout has ended. */
const afterHolderEndedMs = 5_000;

/**
 * Polls done() until it is true or timeoutMs has passed since startedAt (performance.now()); past
 * that, for up to heldBackTimeoutMs more, only while a transaction that began before `since`
 * (server clock) holds every reader of the server back, and for a few seconds after it ends, so
 * that the readers it held back can catch up.
 */
export async function waitUnlessHeldBack(
  db: Executor,
  options: { done: () => Promise<boolean>; since: Date; startedAt: number; timeoutMs: number; heldBackTimeoutMs: number; pollMs: number },
): Promise<HeldBackWait> {
  let heldBackBy: string | undefined;
  let holderEndedAt: number | undefined;
  for (;;) {
    if (await options.done()) return { done: true, at: performance.now(), heldBackBy };
    const now = performance.now();
    const waited = now - options.startedAt;
    if (waited > options.timeoutMs) {
      const holder = waited < options.timeoutMs + options.heldBackTimeoutMs ? await readersHeldBackSince(db, options.since) : undefined;
      if (holder) {
        heldBackBy = holder;
        holderEndedAt = undefined;
      } else {
        if (heldBackBy !== undefined) holderEndedAt ??= now;
        if (holderEndedAt === undefined || now - holderEndedAt > afterHolderEndedMs) return { done: false, at: now, heldBackBy };
      }
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs));
  }
}

/**
 * Waits until the group has read everything, up to timeoutMs; past that, up to heldBackTimeoutMs
 * more while a transaction older than the wait holds every reader of the server back.
 */
export async function waitForCatchUp(db: Executor, group: string, timeoutMs: number, heldBackTimeoutMs: number): Promise<CatchUp> {
  const wait = await waitUnlessHeldBack(db, {
    done: async () => (await groupLag(db, group)) === 0,
    since: await serverNow(db),
    startedAt: performance.now(),
    timeoutMs,
    heldBackTimeoutMs,
    pollMs: 100,
  });
  return { caughtUp: wait.done, heldBackBy: wait.heldBackBy };
}
