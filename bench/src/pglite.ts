import { Postbox, pgliteDatabase } from 'postbox';
import { readPostbox, readRaw } from './support/consume-workload.js';
import { chunks, orderMessage } from './support/messages.js';
import { createRawTables, publishRace } from './support/publish-workload.js';
import { pgliteSession } from './support/session.js';
import { printTable, ratio } from './support/table.js';
import { perSecond } from './support/timing.js';

const consumeCount = Number(process.env.BENCH_PGLITE_CONSUME_COUNT ?? 50_000);
const batched = { total: Number(process.env.BENCH_PGLITE_PUBLISH_COUNT ?? 50_000), perTransaction: 1_000 };
const single = { total: Number(process.env.BENCH_PGLITE_PUBLISH_SINGLE_COUNT ?? 2_000), perTransaction: 1 };
const batchSize = 1_000;

/** A fresh in-memory PGlite with the Postbox schema; closing the Postbox closes it. */
async function openPglite(): Promise<{ postbox: Postbox; pglite: Awaited<ReturnType<typeof pgliteDatabase>>['pglite'] }> {
  const db = await pgliteDatabase();
  const postbox = await Postbox.create({ database: db, migrate: 'auto' });
  return { postbox, pglite: db.pglite };
}

async function consume(): Promise<(string | number)[][]> {
  const { postbox, pglite } = await openPglite();
  try {
    for (const batch of chunks(consumeCount, batchSize, orderMessage)) await postbox.publish(batch);
    await pglite.query('select count(*) from postbox.messages');
    const raw = await readRaw(pgliteSession(pglite), 'raw', consumeCount, batchSize);
    const viaPostbox = await readPostbox(postbox, 'postbox', consumeCount, batchSize);
    const rate = (ms: number) => perSecond(consumeCount, ms);
    return [
      ['consume', 'raw limit (same read, checkpoint UPDATE per batch)', consumeCount, rate(raw), '100%'],
      ['consume', 'Postbox consumer, handleBatch no-op', consumeCount, rate(viaPostbox), ratio(rate(viaPostbox), rate(raw))],
    ];
  } finally {
    await postbox.close();
    await postbox.db.close();
  }
}

async function publish(): Promise<(string | number)[][]> {
  const { postbox, pglite } = await openPglite();
  try {
    const session = pgliteSession(pglite);
    await createRawTables(session);
    const rows: (string | number)[][] = [];
    for (const { total, perTransaction } of [batched, single]) {
      const times = await publishRace(session, postbox, total, perTransaction);
      const label = `publish, ${perTransaction.toLocaleString('en-US')} per tx`;
      const rate = (ms: number) => perSecond(total, ms);
      rows.push(
        [label, 'raw INSERT, primary key only', total, rate(times.raw), '100%'],
        [label, 'raw INSERT, copy of postbox.messages', total, rate(times.rawIndexed), ratio(rate(times.rawIndexed), rate(times.raw))],
        [label, 'Postbox.enqueue', total, rate(times.postbox), ratio(rate(times.postbox), rate(times.raw))],
      );
    }
    return rows;
  } finally {
    await postbox.close();
    await postbox.db.close();
  }
}

const rows = [...(await consume()), ...(await publish())];
printTable('PGlite (embedded, in memory)', ['workload', 'reader or writer', 'messages', 'msg/s', 'of raw'], rows);
