// A router route (per-key lanes, retry, timeout, dead letters) that handles TOTAL messages, each with a
// payload `sequence` from 0 to TOTAL-1, and records its footprint (see FootprintMeter) after every
// TOTAL/SAMPLES of them in chaos_memory_samples, with what it received so far. It keeps no
// per-message state beyond a bitmap allocated up front, so its own bookkeeping does not grow.
// Env: DATABASE_URL, GROUP, TOPIC, TOTAL, SAMPLES. Prints "active" once it holds the group, "done"
// after the last sample; exits on SIGTERM.
import { createLogger, exitOnSignals, Postbox, type RoutedMessage, Router } from 'postbox';
import { FootprintMeter } from '../support/process-footprint.js';
import { announce, numberEnv, requiredEnv } from './process-env.js';

const meter = new FootprintMeter();
const group = requiredEnv('GROUP');
const total = numberEnv('TOTAL', 100_000);
const samples = numberEnv('SAMPLES', 20);
const seen = new Uint8Array(total);
let deliveries = 0;
let distinct = 0;

const postbox = await Postbox.create({
  databaseUrl: requiredEnv('DATABASE_URL'),
  migrate: 'check',
  logger: createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'chaos-memory' }),
});
const router = new Router(postbox).addHandler({
  name: group,
  topics: [requiredEnv('TOPIC')],
  timeoutMs: 10_000,
  handle: async (message: RoutedMessage<{ sequence: number }>) => {
    deliveries += 1;
    const { sequence } = message.payload;
    if (seen[sequence] === 0) distinct += 1;
    seen[sequence] = 1;
  },
});

async function record(): Promise<void> {
  const footprint = meter.measure();
  await postbox.db.query(
    `insert into chaos_memory_samples (handled, deliveries, rss_bytes, heap_used_bytes, resources, connections, max_listeners)
     values ($1, $2, $3, $4, $5, $6, $7)`,
    [
      distinct,
      deliveries,
      footprint.rssBytes,
      footprint.heapUsedBytes,
      JSON.stringify(footprint.resources),
      footprint.connections,
      footprint.maxListenersPerConnection,
    ],
  );
}

exitOnSignals(async () => {
  const stopped = await router.stop();
  return (await postbox.close()) && stopped;
});
await router.start();
const lease = setInterval(async () => {
  const [status] = await postbox.groupStatus(group).catch(() => []);
  if (status?.partitions[0]?.owner) {
    clearInterval(lease);
    announce('active');
  }
}, 20);

let next = 1;
while (next <= samples) {
  if (distinct >= Math.ceil((total * next) / samples)) {
    await record();
    next += 1;
  } else {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
announce('done');
