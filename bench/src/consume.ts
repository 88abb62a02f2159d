import type pg from 'pg';
import PgBoss from 'pg-boss';
import { Postbox } from 'postbox';
import { readPostbox, readRaw } from './support/consume-workload.js';
import { connect, createDatabase } from './support/database.js';
import { chunks, orderMessage, payload, topic } from './support/messages.js';
import { pgSession } from './support/session.js';
import { type Cell, printTable, ratio, times } from './support/table.js';
import { perSecond, timed } from './support/timing.js';

const total = Number(process.env.BENCH_CONSUME_COUNT ?? 200_000);
const batchSize = 1_000;

async function load(client: pg.Client, postbox: Postbox): Promise<number> {
  const { ms } = await timed(async () => {
    for (const batch of chunks(total, batchSize, orderMessage)) {
      await client.query('begin');
      await postbox.enqueue(client, batch);
      await client.query('commit');
    }
  });
  return ms;
}

/** pg-boss 10, one worker loop: fetch 1,000 jobs (no priority sort), then complete them all in one call. */
async function readPgBoss(url: string): Promise<number> {
  const boss = new PgBoss({ connectionString: url });
  boss.on('error', (error) => console.error('pg-boss:', error));
  await boss.start();
  await boss.createQueue(topic);
  for (const batch of chunks(total, batchSize, (i) => ({ name: topic, data: payload(i) }))) await boss.insert(batch);
  const { ms } = await timed(async () => {
    for (let read = 0; read < total; ) {
      const jobs = await boss.fetch(topic, { batchSize, priority: false });
      if (jobs.length === 0) continue;
      await boss.complete(
        topic,
        jobs.map((job) => job.id),
      );
      read += jobs.length;
    }
  });
  await boss.stop({ graceful: false, wait: true });
  return ms;
}

async function main(): Promise<void> {
  const database = await createDatabase('consume');
  const postbox = await Postbox.create({ databaseUrl: database.url, migrate: 'auto' });
  const client = await connect(database.url);
  const session = pgSession(client);
  try {
    // No statistics until the ANALYZE below: the first pair of runs sees the table as users first get it.
    await client.query('alter table postbox.messages set (autovacuum_enabled = off)');
    const loadMs = await load(client, postbox);
    await readRaw(session, 'warm-up', total, batchSize);
    // Raw first on the fresh table, Postbox first after ANALYZE, so drift on a noisy machine falls on both.
    const freshRaw = await readRaw(session, 'raw-fresh', total, batchSize);
    const freshPostbox = await readPostbox(postbox, 'postbox-fresh', total, batchSize);
    await client.query('analyze postbox.messages');
    const analyzedPostbox = await readPostbox(postbox, 'postbox-analyzed', total, batchSize);
    const analyzedRaw = await readRaw(session, 'raw-analyzed', total, batchSize);
    const pgBoss = await readPgBoss(database.url);

    const row = (name: string, ms: number, baseline: number): Cell[] => [
      name,
      (ms / 1000).toFixed(2),
      perSecond(total, ms),
      ratio(perSecond(total, ms), perSecond(total, baseline)),
    ];
    printTable(
      `Consume: ${total.toLocaleString('en-US')} messages in one topic, batches of ${batchSize.toLocaleString('en-US')}`,
      ['reader', 'seconds', 'msg/s', 'of raw limit'],
      [
        row('raw limit, fresh table', freshRaw, freshRaw),
        row('Postbox consumer, fresh table', freshPostbox, freshRaw),
        row('raw limit, after ANALYZE', analyzedRaw, analyzedRaw),
        row('Postbox consumer, after ANALYZE', analyzedPostbox, analyzedRaw),
        row('pg-boss 10 fetch + complete', pgBoss, freshRaw),
      ],
    );
    printTable(
      'Consume: ratios',
      ['comparison', 'ratio', 'target'],
      [
        ['Postbox / raw limit, fresh table', ratio(freshRaw, freshPostbox), '≥ 60%'],
        ['Postbox / raw limit, after ANALYZE', ratio(analyzedRaw, analyzedPostbox), '≥ 60%'],
        ['Postbox / pg-boss, fresh table', times(pgBoss, freshPostbox), '≥ 10×'],
      ],
    );
    console.log(
      `Postbox, fresh table: ${Math.round(perSecond(total, freshPostbox)).toLocaleString('en-US')} msg/s (goal ≥ 50,000). Loading took ${(loadMs / 1000).toFixed(1)} s, untimed.`,
    );
  } finally {
    await client.end();
    await postbox.close();
    await database.drop();
  }
}

await main();
