import type pg from 'pg';
import { connect } from './database.js';

const sampleMs = 50;

/**
 * Samples whether transactions of other databases on the server have written and are still open.
 * Postbox's readers see a message once every transaction older than its own has ended, on the whole
 * server (the watermark), so these delay Postbox's delivery; pg-boss and graphile-worker do not wait
 * for them. On a shared server this tells how much of Postbox's latency is its neighbours'.
 */
export class OtherWriters {
  private samples = 0;
  private busy = 0;
  private running = true;
  private readonly loop: Promise<void>;

  private constructor(private readonly client: pg.Client) {
    this.loop = this.sample();
  }

  static async start(url: string): Promise<OtherWriters> {
    return new OtherWriters(await connect(url));
  }

  private async sample(): Promise<void> {
    while (this.running) {
      const { rows } = await this.client.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity
         where backend_xid is not null and datname is distinct from current_database()`,
      );
      this.samples += 1;
      if ((rows[0]?.n ?? 0) > 0) this.busy += 1;
      await new Promise((resolve) => setTimeout(resolve, sampleMs));
    }
  }

  /** Stops sampling; the share of samples (0 to 1) that found such a transaction open. */
  async stop(): Promise<number> {
    this.running = false;
    await this.loop;
    await this.client.end();
    return this.samples === 0 ? 0 : this.busy / this.samples;
  }
}

export function otherWritersNote(share: number): string {
  return `Transactions of other databases on this server held writes open in ${(share * 100).toFixed(0)}% of ${sampleMs} ms samples during these runs: Postbox's readers wait for them to end (the watermark); pg-boss and graphile-worker do not.`;
}
