import type { Executor } from '../sql/database.js';

/*
 * Named leases in postbox.leases: one process at a time holds each, for a time it renews, with the
 * rules of a consumer group's partitions: a lease is taken when it is free, run out, or already the
 * taker's, and every write that needs it is fenced by a renewal in its own transaction.
 */

/** Takes the lease if nobody else holds a live one; true when `owner` holds it now. */
export async function acquireLease(db: Executor, name: string, owner: string, ttlMs: number): Promise<boolean> {
  const { rows } = await db.query<{ owner: string }>(
    `insert into postbox.leases as l (name, owner, expires_at, acquired_at)
     values ($1, $2, now() + $3 * interval '1 millisecond', now())
     on conflict (name) do update
       set owner = excluded.owner,
           expires_at = excluded.expires_at,
           acquired_at = case when l.owner = excluded.owner then l.acquired_at else now() end,
           wake_at = null,
           updated_at = now()
     where l.owner is null or l.owner = excluded.owner or l.expires_at < now()
     returning owner`,
    [name, owner, ttlMs],
  );
  return rows.length === 1;
}

/**
 * Extends the lease while `owner` still holds it; false once it ran out or another took it. Run in
 * a transaction, the renewal fences it: the row stays locked until commit, so nobody can take the
 * lease while the transaction's work is in flight, and work done after a false renewal must roll back.
 */
export async function renewLease(db: Executor, name: string, owner: string, ttlMs: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `update postbox.leases set expires_at = now() + $3 * interval '1 millisecond', updated_at = now()
     where name = $1 and owner = $2 and expires_at > now()`,
    [name, owner, ttlMs],
  );
  return rowCount > 0;
}

/** Records that the holder next looks on its own in `inMs` (by the server's clock), so that writers with work due sooner wake it. */
export async function setLeaseWake(db: Executor, name: string, owner: string, inMs: number): Promise<void> {
  await db.query(`update postbox.leases set wake_at = clock_timestamp() + $3 * interval '1 millisecond' where name = $1 and owner = $2`, [
    name,
    owner,
    inMs,
  ]);
}

/** Hands the lease back, and tells `channel` so that a process waiting for it takes it at once. */
export async function releaseLease(db: Executor, name: string, owner: string, channel: string): Promise<void> {
  await db.query(
    `with released as (
       update postbox.leases set owner = null, expires_at = null, wake_at = null, updated_at = now()
       where name = $1 and owner = $2
       returning name
     )
     select pg_notify($3, name) from released`,
    [name, owner, channel],
  );
}
