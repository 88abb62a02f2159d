import type { Executor } from '../sql/database.js';

/**
 * Deletes ephemeral groups (one per process or pod) not seen for olderThanMs and not leased now.
 * Durable groups are never touched: groups are told apart by their recorded `ephemeral` flag, not by a name pattern.
 */
export async function cleanupZombieGroups(db: Executor, olderThanMs: number): Promise<string[]> {
  const { rows } = await db.query<{ group_name: string }>(
    `delete from postbox.consumer_groups
     where ephemeral
       and last_seen_at < now() - $1 * interval '1 millisecond'
       and not exists (
         select from postbox.group_partitions p
         where p.group_name = consumer_groups.group_name and p.lease_expires_at > now())
     returning group_name`,
    [olderThanMs],
  );
  return rows.map((row) => row.group_name).sort();
}
