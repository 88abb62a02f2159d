// A router with one route on the log, with the library's defaults (per-key lanes, retry, dead letters),
// whose handler records each delivery in chaos_router_effects through the pool (at-least-once).
// Env: DATABASE_URL, GROUP, TOPIC. Prints "active" once the route holds its group.
import { createLogger, exitOnSignals, Postbox, Router } from 'postbox';
import { announce, requiredEnv } from './process-env.js';

const group = requiredEnv('GROUP');
const postbox = await Postbox.create({
  databaseUrl: requiredEnv('DATABASE_URL'),
  migrate: 'check',
  logger: createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'chaos-outage-router' }),
});
const router = new Router(postbox).addHandler({
  name: group,
  topics: [requiredEnv('TOPIC')],
  handle: async (message) => {
    await postbox.db.query('insert into chaos_router_effects (message_id) values ($1)', [message.id]);
  },
});
exitOnSignals(async () => {
  const stopped = await router.stop();
  return (await postbox.close()) && stopped;
});
await router.start();
const timer = setInterval(async () => {
  const [status] = await postbox.groupStatus(group).catch(() => []);
  if (status?.partitions[0]?.owner) {
    clearInterval(timer);
    announce('active');
  }
}, 20);
