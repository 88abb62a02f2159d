import { type Postbox, Router } from 'postbox';
import { chunks } from './messages.js';
import { until } from './until.js';

export interface ParkingWorkload {
  keys: number;
  messagesPerKey: number;
}

export interface ParkingRun {
  failingKeys: number;
  healthyMessages: number;
  /** From the router's start until every message of a healthy key in the backlog was handled. */
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

/** `rounds` messages per key, going round the keys in turn. */
async function publishRounds(postbox: Postbox, topic: string, keys: number, rounds: number): Promise<void> {
  for (const batch of chunks(keys * rounds, 1_000, (i) => ({ topic, type: 'account.changed', key: keyOf(i % keys), payload: { i } }))) {
    await postbox.publish(batch);
  }
}

/**
 * A router route with parking on, all its options and the quick retries in process left at their
 * defaults; its handler throws, always, for the failing keys and does nothing for the others.
 *
 * A first round of one message per key parks the failing keys (their first failure waits out the
 * quick retries once, 200 and 400 ms, holding that batch). A backlog of messagesPerKey per key is
 * then written, and a router started again over it is timed: the failing keys' messages now park
 * behind their first one, unattempted, while it is attempted again from parking now and then.
 */
export async function runParking(postbox: Postbox, name: string, workload: ParkingWorkload, failing: Set<string>): Promise<ParkingRun> {
  let healthy = 0;
  const route = () =>
    new Router(postbox).addHandler({
      name,
      topics: [name],
      park: true,
      handle: async (message) => {
        if (message.key !== null && failing.has(message.key)) throw new Error(`downstream of ${message.key} is down`);
        healthy += 1;
      },
    });
  const parked = async () => (await postbox.parked.counts()).find((count) => count.group === name)?.total ?? 0;
  const healthyKeys = workload.keys - failing.size;

  await publishRounds(postbox, name, workload.keys, 1);
  const warmUp = route();
  await warmUp.start();
  await until(async () => healthy === healthyKeys && (await parked()) === failing.size, 'the first round to be handled or parked');
  await warmUp.stop();

  await publishRounds(postbox, name, workload.keys, workload.messagesPerKey);
  healthy = 0;
  const healthyMessages = healthyKeys * workload.messagesPerKey;
  const timed = route();
  const started = performance.now();
  try {
    await timed.start();
    await until(() => healthy >= healthyMessages, 'the healthy keys to be handled', 120_000);
    const ms = performance.now() - started;
    const expected = failing.size * (workload.messagesPerKey + 1);
    await until(async () => (await parked()) >= expected, 'the failing keys to be parked', 5_000).catch(() => undefined);
    return { failingKeys: failing.size, healthyMessages, ms, parked: await parked() };
  } finally {
    await timed.stop();
  }
}
