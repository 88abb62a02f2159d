// Publishes through the outbox at a steady rate until SIGTERM (see SteadyProducer): a business row in
// chaos_orders and its message commit together, so chaos_orders says what was really sent.
// Env: DATABASE_URL, TOPIC, RATE (messages a second), PER_TRANSACTION, KEYS. Prints "publishing".
import { createLogger, exitOnSignals, Postbox } from 'postbox';
import { SteadyProducer } from '../support/steady-producer.js';
import { announce, numberEnv, requiredEnv } from './process-env.js';

const topic = requiredEnv('TOPIC');
const keys = numberEnv('KEYS', 16);
const postbox = await Postbox.create({
  databaseUrl: requiredEnv('DATABASE_URL'),
  migrate: 'check',
  logger: createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'chaos-publisher' }),
});
const producer = new SteadyProducer({
  postbox,
  topic,
  messagesPerSecond: numberEnv('RATE', 500),
  messagesPerTransaction: numberEnv('PER_TRANSACTION', 10),
  message: (sequence) => ({ topic, type: 'steady', key: `key-${sequence % keys}`, payload: { sequence } }),
});
exitOnSignals(async () => {
  await producer.stop();
  return postbox.close();
});
producer.start();
announce('publishing');
