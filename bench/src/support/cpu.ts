import { readFileSync } from 'node:fs';
import type pg from 'pg';

/** Clock ticks per second of /proc's counters (USER_HZ, 100 on Linux). */
const ticksPerSecond = 100;

/** CPU milliseconds a process has used (user and system), from /proc; undefined when it cannot be read. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
  } catch {
    return undefined;
  }
}

export interface MachineCpu {
  /** CPU milliseconds, summed over the cores, spent running anything. */
  busyMs: number;
  idleMs: number;
  /** Time the hypervisor gave the cores to another guest. */
  stealMs: number;
}

/** The whole machine's CPU counters, from the first line of /proc/stat; undefined off Linux. */
export function machineCpu(): MachineCpu | undefined {
  try {
    const [, ...values] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = values.map(Number) as number[];
    const ms = (ticks: number | undefined) => ((ticks ?? 0) * 1000) / ticksPerSecond;
    return {
      busyMs: ms((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0)),
      idleMs: ms((idle ?? 0) + (iowait ?? 0)),
      stealMs: ms(steal),
    };
  } catch {
    return undefined;
  }
}

export function machineCpuSince(start: MachineCpu | undefined): MachineCpu | undefined {
  const now = machineCpu();
  if (!start || !now) return undefined;
  return { busyMs: now.busyMs - start.busyMs, idleMs: now.idleMs - start.idleMs, stealMs: now.stealMs - start.stealMs };
}

/**
 * The CPU of the PostgreSQL server processes serving one database (every backend that appears while
 * it runs, sampled as they come and go), read from /proc on a connection of its own. The server's
 * shared background processes (WAL writer, checkpointer, autovacuum) are not in it.
 */
export class ServerCpu {
  private readonly backends = new Map<number, { first: number; last: number }>();
  private readable = true;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly client: pg.Client,
    private readonly database: string,
    private readonly startedAt: string,
  ) {}

  /** Starts sampling every intervalMs on client, a connection used for nothing else. */
  static async start(client: pg.Client, database: string, intervalMs = 200): Promise<ServerCpu> {
    const { rows } = await client.query<{ now: string }>('select clock_timestamp()::text as now');
    const cpu = new ServerCpu(client, database, rows[0]?.now as string);
    await cpu.sample();
    cpu.timer = setInterval(() => void cpu.sample().catch(() => undefined), intervalMs);
    return cpu;
  }

  private inFlight: Promise<void> | undefined;

  /** Reads the CPU of the database's backends now; a sample already running is waited for instead. */
  sample(): Promise<void> {
    this.inFlight ??= this.read().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async read(): Promise<void> {
    const { rows } = await this.client.query<{ pid: number; fresh: boolean }>(
      `select pid, backend_start >= $2::timestamptz as fresh from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`,
      [this.database, this.startedAt],
    );
    for (const { pid, fresh } of rows) {
      const ms = processCpuMs(pid);
      if (ms === undefined) {
        this.readable = false;
        continue;
      }
      const seen = this.backends.get(pid);
      if (seen) seen.last = ms;
      else this.backends.set(pid, { first: fresh ? 0 : ms, last: ms });
    }
  }

  /** Stops sampling; the server's CPU milliseconds since start, or undefined when /proc could not be read. */
  async stop(): Promise<number | undefined> {
    clearInterval(this.timer);
    await this.inFlight?.catch(() => undefined);
    await this.sample();
    if (!this.readable) return undefined;
    let total = 0;
    for (const { first, last } of this.backends.values()) total += last - first;
    return total;
  }
}
