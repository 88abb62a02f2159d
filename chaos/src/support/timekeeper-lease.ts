import { defaults, type Executor } from 'postbox';
import type { LeaseWatch } from './lease-watch.js';

const leaseName = defaults.timekeeper.leaseName;

/**
 * The timekeeper's lease: work done is a message the holder put into the log (a delayed message
 * moved, a schedule's tick appended) on one of `topics`, in a transaction begun after `since`. A
 * topic's newest message is the last one on its index, and messages take the time of their move.
 */
export function timekeeperLeaseWatch(db: Executor, topics: readonly string[]): LeaseWatch {
  return {
    label: 'the timekeeper lease',
    owner: async () => {
      const { rows } = await db.query<{ owner: string | null }>(
        'select case when expires_at > now() then owner end as owner from postbox.leases where name = $1',
        [leaseName],
      );
      return rows[0]?.owner ?? null;
    },
    workedSince: async (formerOwner, since) => {
      const { rows } = await db.query<{ worked: boolean }>(
        `select exists (select 1 from postbox.leases where name = $1 and owner <> $2 and expires_at > now())
            and exists (
              select 1 from unnest($3::text[]) as t(topic)
              cross join lateral (
                select m.created_at from postbox.messages m where m.topic = t.topic
                order by m.transaction_id desc, m.global_position desc limit 1
              ) newest
              where newest.created_at > $4
            ) as worked`,
        [leaseName, formerOwner, [...topics], since],
      );
      return rows[0]?.worked === true;
    },
    backlog: async () => {
      const { rows } = await db.query<{ overdue: number }>(
        'select count(*)::int as overdue from postbox.scheduled_messages where due_at <= clock_timestamp()',
      );
      return Number(rows[0]?.overdue ?? 0);
    },
    describe: async () => {
      const { rows } = await db.query('select owner, expires_at, acquired_at, wake_at, updated_at from postbox.leases where name = $1', [
        leaseName,
      ]);
      return JSON.stringify(rows[0] ?? null);
    },
  };
}
