import { Postbox } from 'postbox';
import { connect, createDatabase } from './support/database.js';
import { createRawTables, type PublishTimes, publishRace } from './support/publish-workload.js';
import { pgSession } from './support/session.js';
import { printTable, ratio } from './support/table.js';
import { perSecond } from './support/timing.js';

const batched = { total: Number(process.env.BENCH_PUBLISH_COUNT ?? 100_000), perTransaction: 1_000 };
const single = { total: Number(process.env.BENCH_PUBLISH_SINGLE_COUNT ?? 20_000), perTransaction: 1 };

async function main(): Promise<void> {
  const database = await createDatabase('publish');
  const postbox = await Postbox.create({ databaseUrl: database.url, migrate: 'auto' });
  const client = await connect(database.url);
  try {
    const session = pgSession(client);
    await createRawTables(session);
    const rows: (string | number)[][] = [];
    for (const { total, perTransaction } of [batched, single]) {
      const times: PublishTimes = await publishRace(session, postbox, total, perTransaction);
      const label = `${perTransaction.toLocaleString('en-US')} per tx`;
      const rate = (ms: number) => perSecond(total, ms);
      rows.push(
        [label, 'raw INSERT, primary key only', total, rate(times.raw), '100%'],
        [label, 'raw INSERT, copy of postbox.messages', total, rate(times.rawIndexed), ratio(rate(times.rawIndexed), rate(times.raw))],
        [label, 'Postbox.enqueue', total, rate(times.postbox), ratio(rate(times.postbox), rate(times.raw))],
      );
    }
    printTable('Publish: node-postgres client, BEGIN … COMMIT per transaction', ['batch', 'writer', 'messages', 'msg/s', 'of raw'], rows);
  } finally {
    await client.end();
    await postbox.close();
    await database.drop();
  }
}

await main();
