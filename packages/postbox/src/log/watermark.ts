import { defaults } from '../config/defaults.js';
import { redactUrl } from '../sql/connection-secrets.js';
import type { Executor } from '../sql/database.js';

/**
 * An open writing transaction, anywhere on the server: readers of the log stop at the oldest one,
 * in any database, so each of these holds them back until it ends.
 */
export interface WatermarkHolder {
  /** A session's open transaction, or a prepared transaction waiting for COMMIT PREPARED. */
  kind: 'session' | 'prepared';
  /** The backend's process id; null for a prepared transaction, which no session holds. */
  pid: number | null;
  database: string | null;
  user: string | null;
  applicationName: string | null;
  /** Null for a local (Unix socket) connection and for a prepared transaction. */
  clientAddress: string | null;
  /**
   * How long the transaction has been open (or prepared). Null when this role may not see the
   * session's times: PostgreSQL shows them only to its own role, superusers and pg_read_all_stats.
   */
  transactionSeconds: number | null;
  /** The session's state (`idle in transaction`, `active`...), `prepared`, or null when hidden like the times. */
  state: string | null;
  /** When the session's last query started; null for a prepared transaction or when hidden. */
  queryStart: Date | null;
  /** The start of the session's last query, never the whole text; `<insufficient privilege>` when hidden. */
  query: string | null;
  /** The name a prepared transaction was given (PREPARE TRANSACTION 'gid'); null for a session. */
  gid: string | null;
  /** The 32-bit transaction id, as PostgreSQL shows it in pg_stat_activity and pg_locks. */
  transactionId: string;
  /** True for the one whose id is the watermark readers stop at now. */
  holdsWatermark: boolean;
}

interface HolderRow {
  kind: 'session' | 'prepared';
  pid: number | null;
  database: string | null;
  user: string | null;
  application_name: string | null;
  client_address: string | null;
  seconds: number | null;
  state: string | null;
  query_start: Date | string | null;
  query: string | null;
  gid: string | null;
  transaction_id: string;
  holds: boolean;
}

// Parallel workers share their leader's transaction: only the leader is listed. The watermark is
// pg_snapshot_xmin, as in postbox.read_after; its low 32 bits are the holder's xid. Holders come in
// the order of their transaction ids (age(xid) is wraparound-safe): the watermark's holder first.
const holdersSql = `
with clock as (select clock_timestamp() as now),
holders as (
  select 'session' as kind, a.pid, a.datname::text as database, a.usename::text as "user",
         nullif(a.application_name, '') as application_name, host(a.client_addr) as client_address,
         extract(epoch from c.now - a.xact_start)::float8 as seconds, a.state, a.query_start,
         left(a.query, $1) as query, null::text as gid, a.backend_xid as xid
  from pg_stat_activity a cross join clock c
  where a.backend_xid is not null and a.pid <> pg_backend_pid() and a.leader_pid is null
  union all
  select 'prepared', null, p.database::text, p.owner::text, null, null,
         extract(epoch from c.now - p.prepared)::float8, 'prepared', null, null, p.gid, p.transaction
  from pg_prepared_xacts p cross join clock c
)
select h.kind, h.pid, h.database, h.user, h.application_name, h.client_address, h.seconds, h.state, h.query_start,
       h.query, h.gid, h.xid::text as transaction_id,
       h.xid::text::bigint = pg_snapshot_xmin(pg_current_snapshot())::text::numeric % 4294967296 as holds
from holders h
order by age(h.xid) desc, h.seconds desc nulls last`;

/**
 * The open writing transactions of the whole server (other databases and prepared transactions
 * included), the watermark's holder first, with what names their owner. Read-only transactions are
 * not listed: they take no transaction id, so they hold no reader back.
 */
export async function watermarkHolders(db: Executor): Promise<WatermarkHolder[]> {
  const { rows } = await db.query<HolderRow>(holdersSql, [defaults.watermark.queryPreviewChars]);
  return rows.map((row) => ({
    kind: row.kind,
    pid: row.pid === null ? null : Number(row.pid),
    database: row.database,
    user: row.user,
    applicationName: row.application_name,
    clientAddress: row.client_address,
    transactionSeconds: row.seconds === null ? null : Number(row.seconds),
    state: row.state,
    queryStart: row.query_start === null ? null : new Date(row.query_start),
    query: row.query === null ? null : redactUrl(row.query),
    gid: row.gid,
    transactionId: row.transaction_id,
    holdsWatermark: row.holds,
  }));
}

/**
 * How long readers have been held back: the age of the oldest open writing transaction, 0 when
 * there is none. Holders whose age this role may not see count as 0.
 */
export function watermarkDelayOf(holders: readonly WatermarkHolder[]): number {
  return holders.reduce((max, holder) => Math.max(max, holder.transactionSeconds ?? 0), 0);
}

/** Age of the oldest open writing transaction of the server, prepared ones included: readers cannot pass it until it ends. */
export async function watermarkDelaySeconds(db: Executor): Promise<number> {
  return watermarkDelayOf(await watermarkHolders(db));
}

/**
 * The holders worth naming to a person: every transaction open for at least minSeconds (all of
 * them at 0), and the watermark's holder when readers are held that long or when its age cannot
 * be seen. Shorter transactions are ordinary traffic that ends before anyone could act on it; the
 * watermark's holder is named even when younger than an older holder, because readers wait for it
 * first.
 */
export function holdersWorthShowing(
  holders: readonly WatermarkHolder[],
  minSeconds: number = defaults.watermark.showHoldersAfterSeconds,
): WatermarkHolder[] {
  const held = watermarkDelayOf(holders) >= minSeconds;
  return holders.filter(
    (holder) =>
      (holder.transactionSeconds === null ? minSeconds <= 0 : holder.transactionSeconds >= minSeconds) ||
      (holder.holdsWatermark && (held || holder.transactionSeconds === null)),
  );
}

/** A holder's age for people: `45s`, `12m 05s`, or why it is unknown. */
export function holderAge(holder: WatermarkHolder): string {
  const seconds = holder.transactionSeconds;
  if (seconds === null) return 'age unknown (needs pg_read_all_stats)';
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)}s`;
  const whole = Math.round(seconds);
  const hours = Math.floor(whole / 3_600);
  const minutes = Math.floor((whole % 3_600) / 60);
  const rest = String(whole % 60).padStart(2, '0');
  return hours > 0 ? `${hours}h ${String(minutes).padStart(2, '0')}m ${rest}s` : `${minutes}m ${rest}s`;
}

/** A holder in one line, for health details and the doctor: who, where, how long, doing what. */
export function describeHolder(holder: WatermarkHolder): string {
  const where = `in database ${holder.database ?? '?'}`;
  if (holder.kind === 'prepared') {
    return `prepared transaction ${JSON.stringify(holder.gid)} ${where} (owner ${holder.user ?? '?'}), prepared ${holderAge(holder)} ago`;
  }
  const who = [
    holder.user && `user ${holder.user}`,
    holder.applicationName && `application ${JSON.stringify(holder.applicationName)}`,
    `client ${holder.clientAddress ?? 'local'}`,
  ].filter(Boolean);
  const head = `pid ${holder.pid} ${where} (${who.join(', ')})`;
  if (holder.transactionSeconds === null) return `${head}, transaction ${holderAge(holder)}`;
  const started = holder.queryStart ? `, last query started ${holder.queryStart.toISOString()}` : '';
  const query = holder.query ? `: ${JSON.stringify(oneLine(holder.query))}` : '';
  return `${head}, transaction open ${holderAge(holder)}, ${holder.state ?? 'state unknown'}${started}${query}`;
}

/** A query preview on one line, at most `chars` characters. */
export function oneLine(query: string, chars: number = defaults.watermark.queryPreviewChars): string {
  const flat = query.replace(/\s+/g, ' ').trim();
  return flat.length > chars ? `${flat.slice(0, chars - 1)}…` : flat;
}
