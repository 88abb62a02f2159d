import type { Executor } from 'postbox';
import { delay, randomBetween } from './wait.js';

/** Keys whose downstream is down until a time on the server's clock: a handler fails their messages until then. */
export async function createFailingKeysTable(db: Executor): Promise<void> {
  await db.query('create table chaos_failing_keys (key text primary key, until timestamptz not null)');
}

/** True while the key's downstream is down, read in the handler's transaction. */
export async function keyIsFailing(tx: Executor, key: string): Promise<boolean> {
  const { rows } = await tx.query('select 1 from chaos_failing_keys where key = $1 and until > clock_timestamp()', [key]);
  return rows.length > 0;
}

export interface KeyOutagesOptions {
  db: Executor;
  /** The keys that may fail. */
  keys: readonly string[];
  /** How many keys go down at a time, drawn at random. */
  keysAtOnce: readonly [number, number];
  /** How long a key stays down, drawn at random. */
  outageMs: readonly [number, number];
  /** Time between two outages. */
  gapMs: readonly [number, number];
  /** The parking group, whose parked messages are counted while the outages run. */
  group: string;
}

/**
 * Takes keys down for a while, again and again, until stop(); meanwhile it counts the group's
 * parked messages, to report how many waited at once. A key already down is not taken down again.
 */
export class KeyOutages {
  outages = 0;
  mostParked = 0;
  mostParkedKeys = 0;
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly options: KeyOutagesOptions) {}

  start(): void {
    this.running = true;
    this.loops = [this.takeDown(), this.countParked()];
  }

  /** Stops taking keys down; resolves once the last outage is over. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    const { rows } = await this.options.db.query<{ left_ms: number }>(
      'select coalesce(max(extract(epoch from until - clock_timestamp()) * 1000), 0)::float8 as left_ms from chaos_failing_keys',
    );
    await delay(Math.max(0, Number(rows[0]?.left_ms ?? 0)));
  }

  private async takeDown(): Promise<void> {
    const { db, keys, keysAtOnce, outageMs, gapMs } = this.options;
    while (this.running) {
      await delay(randomBetween(gapMs[0], gapMs[1]));
      if (!this.running) return;
      const chosen = [...keys].sort(() => Math.random() - 0.5).slice(0, randomBetween(keysAtOnce[0], keysAtOnce[1]));
      const { rowCount } = await db.query(
        `insert into chaos_failing_keys as f (key, until)
         select unnest($1::text[]), clock_timestamp() + $2::int * interval '1 millisecond'
         on conflict (key) do update set until = excluded.until where f.until <= clock_timestamp()`,
        [chosen, randomBetween(outageMs[0], outageMs[1])],
      );
      this.outages += rowCount;
    }
  }

  private async countParked(): Promise<void> {
    while (this.running) {
      const { rows } = await this.options.db.query<{ parked: number; keys: number }>(
        'select count(*)::int as parked, count(distinct key)::int as keys from postbox.parked_messages where group_name = $1',
        [this.options.group],
      );
      this.mostParked = Math.max(this.mostParked, Number(rows[0]?.parked ?? 0));
      this.mostParkedKeys = Math.max(this.mostParkedKeys, Number(rows[0]?.keys ?? 0));
      await delay(100);
    }
  }
}
