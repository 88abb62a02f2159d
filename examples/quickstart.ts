// A tour of Postbox on embedded PGlite: no server, no configuration.
// Orders are written with their outbox message in one transaction; a consumer group reads them.
import { type LogMessage, Postbox } from 'postbox';

const dataDir = process.env.POSTBOX_DATA_DIR ?? '.quickstart-data';
const postbox = await Postbox.create({ dataDir });
console.log(`Postbox on ${postbox.db.description}`);

await postbox.db.query('create table if not exists orders (id text primary key, customer text not null, amount int not null)');

async function placeOrder(id: string, customer: string, amount: number, fail = false) {
  try {
    await postbox.transaction(async (tx) => {
      await tx.query('insert into orders (id, customer, amount) values ($1, $2, $3)', [id, customer, amount]);
      await postbox.enqueue(tx, {
        topic: 'orders',
        type: 'order.placed',
        key: customer,
        payload: { id, customer, amount },
        userId: customer,
      });
      if (fail) throw new Error('card declined');
    });
    console.log(`placed   ${id}: the order row and its message committed together`);
  } catch (error) {
    console.log(`rejected ${id}: ${(error as Error).message}; neither the row nor the message exists`);
  }
}

const run = Date.now().toString(36);
await placeOrder(`${run}-1`, 'ada', 120);
await placeOrder(`${run}-2`, 'grace', 75);
await placeOrder(`${run}-3`, 'ada', 999, true);

const received: LogMessage[] = [];
const billing = postbox.consumer({
  group: 'quickstart-billing',
  topics: ['orders'],
  transactional: true,
  handleBatch: async (messages) => {
    for (const message of messages) {
      received.push(message);
      console.log(`consumed ${message.type} #${message.globalPosition} key=${message.key} ${JSON.stringify(message.payload)}`);
    }
  },
});
await billing.start();

const deadline = Date.now() + 5_000;
while (Date.now() < deadline && (await postbox.groupStatus('quickstart-billing'))[0]?.lagMessages !== 0) {
  await new Promise((resolve) => setTimeout(resolve, 50));
}
await postbox.publish({ topic: 'orders', type: 'order.placed', key: 'linus', payload: { id: `${run}-4`, customer: 'linus', amount: 5 } });
while (Date.now() < deadline && !received.some((m) => (m.payload as { id: string }).id === `${run}-4`)) {
  await new Promise((resolve) => setTimeout(resolve, 20));
}

const [status] = await postbox.groupStatus('quickstart-billing');
console.log(
  `group ${status?.group}: ${received.length} consumed this run, lag ${status?.lagMessages}, checkpoint #${status?.partitions[0]?.checkpoint.globalPosition}`,
);
console.log(`Data kept in ${dataDir}; run again to see the group resume from its checkpoint.`);
await postbox.close();
