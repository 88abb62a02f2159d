import { type Postbox, Router } from 'postbox';
import { chunks } from './messages.js';
import { sleep } from './timing.js';

export interface ParkingWorkload {
  keys: number;
  messagesPerKey: number;
}

export interface ParkingRun {
  failingKeys: number;
  healthyMessages: number;
  /** From the router's start until every message of a healthy key was handled. */
  ms: number;
  /** Messages of the failing keys parked when the run ended: all of them, once the last batch committed. */
  parked: number;
}

const keyOf = (k: number) => `account-${k}`;

/** `count` keys spread evenly over the workload's keys. */
export function spreadKeys(workload: ParkingWorkload, count: number): Set<string> {
  const stride = Math.floor(workload.keys / Math.max(count, 1));
  return new Set(Array.from({ length: count }, (_, n) => keyOf(n * stride)));
}

/**
 * One router route with parking on (its defaults, and the default quick retries in process) over a
 * backlog whose messages go round the keys in turn; the handler throws, always, for the failing keys
 * and does nothing for the others. Times how long the healthy keys' messages take.
 */
export async function runParking(postbox: Postbox, name: string, workload: ParkingWorkload, failing: Set<string>): Promise<ParkingRun> {
  const total = workload.keys * workload.messagesPerKey;
  for (const batch of chunks(total, 1_000, (i) => ({ topic: name, type: 'account.changed', key: keyOf(i % workload.keys), payload: { i } }))) {
    await postbox.publish(batch);
  }
  const healthyMessages = total - failing.size * workload.messagesPerKey;
  let healthy = 0;
  let allHandled: () => void = () => {};
  const done = new Promise<void>((resolve) => (allHandled = resolve));
  const router = new Router(postbox).addHandler({
    name,
    topics: [name],
    park: true,
    handle: async (message) => {
      if (message.key !== null && failing.has(message.key)) throw new Error(`downstream of ${message.key} is down`);
      healthy += 1;
      if (healthy === healthyMessages) allHandled();
    },
  });
  const started = performance.now();
  try {
    await router.start();
    await done;
    const ms = performance.now() - started;
    const parkedNow = async () => (await postbox.parked.counts()).find((count) => count.group === name)?.total ?? 0;
    const expected = failing.size * workload.messagesPerKey;
    let parked = await parkedNow();
    for (let waited = 0; parked < expected && waited < 5_000; waited += 50) {
      await sleep(50);
      parked = await parkedNow();
    }
    return { failingKeys: failing.size, healthyMessages, ms, parked };
  } finally {
    await router.stop();
  }
}
