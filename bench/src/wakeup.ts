import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { Postbox } from 'postbox';
import { connect, createDatabase } from './support/database.js';
import { orderMessage, topic } from './support/messages.js';
import { printTable, times } from './support/table.js';
import { percentile, sleep } from './support/timing.js';

const count = Number(process.env.BENCH_WAKEUP_COUNT ?? 1_000);
const pauseMs = 5;

/** When each message reached its handler, by id. */
class Arrivals {
  private readonly times = new Map<string, number>();
  private readonly waiting = new Map<string, (at: number) => void>();

  record(id: string): void {
    const at = performance.now();
    this.times.set(id, at);
    this.waiting.get(id)?.(at);
  }

  when(id: string): Promise<number> {
    const at = this.times.get(id);
    if (at !== undefined) return Promise.resolve(at);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`message ${id} was not handled within 10 s`)), 10_000);
      this.waiting.set(id, (arrived) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(arrived);
      });
    });
  }
}

/** The hand-written floor: LISTEN on one connection, and on each NOTIFY one SELECT of the new rows on another. */
async function rawListener(listener: pg.Client, reader: pg.Client, arrivals: Arrivals): Promise<void> {
  let last = '0';
  let reading = false;
  let again = false;
  const read = async () => {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    do {
      again = false;
      const { rows } = await reader.query({
        name: 'raw_wakeup_read',
        text: 'select global_position, message_id, payload from bench_wakeup where global_position > $1 order by global_position',
        values: [last],
      });
      for (const row of rows) {
        arrivals.record(row.message_id);
        last = row.global_position;
      }
    } while (again);
    reading = false;
  };
  listener.on('notification', () => {
    read().catch((error) => console.error('raw listener:', error));
  });
  await listener.query('listen bench_wakeup');
}

async function main(): Promise<void> {
  const database = await createDatabase('wakeup');
  const postbox = await Postbox.create({ databaseUrl: database.url, migrate: 'auto' });
  const [publisher, listener, reader] = await Promise.all([connect(database.url), connect(database.url), connect(database.url)]);
  try {
    await publisher.query(
      `create table bench_wakeup (like postbox.messages including defaults including identity, primary key (global_position))`,
    );
    const arrivals = new Arrivals();
    await rawListener(listener, reader, arrivals);
    const consumer = postbox.consumer({
      group: 'wakeup',
      topics: [topic],
      handleMessage: async (message) => arrivals.record(message.id),
    });
    await consumer.start();

    const publishers: [string, (id: string, i: number) => Promise<unknown>][] = [
      [
        'raw',
        async (id, i) => {
          const { topic, type, key, payload } = orderMessage(i);
          await publisher.query('begin');
          await publisher.query(
            `with inserted as (
               insert into bench_wakeup (message_id, topic, type, key, payload) values ($1, $2, $3, $4, $5) returning topic)
             select pg_notify('bench_wakeup', topic) from inserted`,
            [id, topic, type, key, JSON.stringify(payload)],
          );
          await publisher.query('commit');
        },
      ],
      ['postbox', (id, i) => postbox.publish({ ...orderMessage(i), id })],
    ];
    const latencies: Record<string, number[]> = { raw: [], postbox: [] };
    for (let i = 0; i < count; i++) {
      for (let turn = 0; turn < publishers.length; turn++) {
        const [name, publish] = publishers[(i + turn) % publishers.length] as (typeof publishers)[number];
        const id = randomUUID();
        const arrived = arrivals.when(id);
        await publish(id, i);
        const committed = performance.now();
        latencies[name]?.push((await arrived) - committed);
        await sleep(pauseMs);
      }
    }
    await consumer.stop();

    const stats = (values: number[]) => [percentile(values, 50), percentile(values, 99), Math.max(...values)];
    const [rawP50, rawP99, rawMax] = stats(latencies.raw ?? []) as [number, number, number];
    const [p50, p99, max] = stats(latencies.postbox ?? []) as [number, number, number];
    printTable(
      `Wake-up latency: ${count.toLocaleString('en-US')} single-message commits, ${pauseMs} ms apart; commit returned → handler start, ms`,
      ['consumer', 'p50', 'p99', 'max'],
      [
        ['raw LISTEN + SELECT', rawP50, rawP99, rawMax],
        ['Postbox consumer (idle group, handleMessage)', p50, p99, max],
        ['Postbox / raw', times(p50, rawP50), times(p99, rawP99), times(max, rawMax)],
      ],
    );
    console.log(`Target: Postbox p50 < 10 ms (${p50 < 10 ? 'met' : 'missed'}).`);
  } finally {
    await Promise.all([publisher.end(), listener.end(), reader.end()]);
    await postbox.close();
    await database.drop();
  }
}

await main();
