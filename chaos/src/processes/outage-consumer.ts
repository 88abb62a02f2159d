// A transactional consumer group with the library's default timings, whose batch handler writes one
// effect row per message in the batch's transaction. Env: DATABASE_URL, GROUP, TOPIC. Prints "active"
// once it holds the group.
import { createLogger, exitOnSignals, Postbox } from 'postbox';
import { announce, announceWhen, requiredEnv } from './process-env.js';

const postbox = await Postbox.create({
  databaseUrl: requiredEnv('DATABASE_URL'),
  migrate: 'check',
  logger: createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'chaos-outage-consumer' }),
});
const consumer = postbox.consumer({
  group: requiredEnv('GROUP'),
  topics: [requiredEnv('TOPIC')],
  transactional: true,
  handleBatch: async (messages, context) => {
    await context.tx?.query('insert into chaos_consumer_effects (message_id) select unnest($1::uuid[])', [
      messages.map((message) => message.id),
    ]);
  },
});
exitOnSignals(() => postbox.close());
await consumer.start();
announceWhen(() => consumer.state === 'active', 'active');
announce('started');
