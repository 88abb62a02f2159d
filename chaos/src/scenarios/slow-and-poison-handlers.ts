import { type OutgoingMessage, Postbox, type RoutedMessage, Router } from 'postbox';
import type { Scenario, ScenarioOutcome } from '../scenario.js';
import { KeySequenceCheck } from '../support/key-sequence-check.js';
import { delay, waitFor } from '../support/wait.js';
import { waitForCount } from '../support/wait-for-count.js';

const topic = 'work';
const group = 'lanes';
const slowKey = 'slow';
const poisonKey = 'key-3';
const keys = 32;
const concurrency = 8;
const maxAttempts = 4;

const plans = {
  full: { messages: 10_000, slowEvery: 500, slowMs: 500 },
  reduced: { messages: 2_000, slowEvery: 250, slowMs: 300 },
} as const;

interface WorkPayload {
  key: string;
  sequence: number;
  poison: boolean;
}

class PoisonError extends Error {}

/** The messages in publish order: every slowEvery-th on the slow key, one poison message half-way, the rest spread over the keys. */
function workload(messages: number, slowEvery: number): OutgoingMessage<WorkPayload>[] {
  const next = new Map<string, number>();
  return Array.from({ length: messages }, (_, index) => {
    const key = index % slowEvery === slowEvery - 1 ? slowKey : `key-${index % keys}`;
    const sequence = (next.get(key) ?? 0) + 1;
    next.set(key, sequence);
    const poison = key === poisonKey && sequence === Math.floor(messages / keys / 2);
    return { topic, type: 'work', key, payload: { key, sequence, poison } };
  });
}

interface Interval {
  start: number;
  end: number;
}

export const slowAndPoisonHandlers: Scenario = {
  name: 'slow-and-poison-handlers',
  summary: `a router route with per-key lanes where one key's handler is slow and one message always fails: other keys keep flowing, the poison message is dead-lettered after ${maxAttempts} attempts and the group moves on`,
  async run({ mode, databaseUrl, log }): Promise<ScenarioOutcome> {
    const plan = plans[mode];
    const postbox = await Postbox.create({ databaseUrl, migrate: 'auto' });
    const router = new Router(postbox);
    try {
      await postbox.db.exec('create table chaos_lane_effects (message_id uuid not null)');
      const messages = workload(plan.messages, plan.slowEvery);
      for (let start = 0; start < messages.length; start += 1_000) await postbox.publish(messages.slice(start, start + 1_000));
      const poisonSequence = messages.find((message) => message.payload.poison)?.payload.sequence;

      const check = new KeySequenceCheck();
      const slowCalls: Interval[] = [];
      const otherDone: number[] = [];
      let poisonAttempts = 0;
      let poisonId: string | undefined;
      router.addHandler<WorkPayload>({
        name: group,
        topics: [topic],
        concurrency,
        retry: { maxAttempts, initialDelayMs: 50 },
        handle: async (message: RoutedMessage<WorkPayload>, context) => {
          const { key, sequence, poison } = message.payload;
          if (context.attempt === 1) check.see({ key, sequence, identity: message.id });
          if (poison) {
            poisonAttempts += 1;
            poisonId = message.id;
            throw new PoisonError(`poison message ${key}/${sequence}`);
          }
          if (key === slowKey) {
            const start = performance.now();
            await delay(plan.slowMs);
            slowCalls.push({ start, end: performance.now() });
            return;
          }
          await postbox.db.query('insert into chaos_lane_effects (message_id) values ($1)', [message.id]);
          otherDone.push(performance.now());
        },
      });
      const started = performance.now();
      await router.start();
      const othersTotal = messages.filter((message) => message.key !== slowKey && !message.payload.poison).length;
      const slowTotal = messages.filter((message) => message.key === slowKey).length;
      const timeoutMs = slowTotal * plan.slowMs * 3 + 30_000;
      const done = await waitForCount(() => otherDone.length + slowCalls.length, othersTotal + slowTotal, { stallMs: 15_000, timeoutMs });
      const finished = performance.now();
      const violations: string[] = [];
      if (!done.reached) violations.push(`the route stopped at ${done.count} of ${othersTotal + slowTotal} messages`);
      await waitFor(async () => (await postbox.groupStatus(group))[0]?.lagMessages === 0, 10_000, 'the group to pass every message').catch(
        (error: Error) => violations.push(error.message),
      );
      await router.stop(10_000);

      // Other keys' progress while the slow key was inside its handler, and how long they sat idle then.
      let stuckMs = 0;
      let othersWhileStuck = 0;
      let idleWhileStuckMs = 0;
      for (const call of slowCalls) {
        const during = otherDone.filter((at) => at >= call.start && at <= call.end);
        stuckMs += call.end - call.start;
        othersWhileStuck += during.length;
        idleWhileStuckMs += call.end - (during.at(-1) ?? call.start);
      }
      if (slowCalls.length > 0 && othersWhileStuck === 0)
        violations.push('no other key made progress while the slow key was in its handler');

      const letters = await postbox.deadLetters.list({ group });
      const letter = letters.find((entry) => entry.messageId === poisonId);
      if (poisonAttempts !== maxAttempts) violations.push(`the poison message was tried ${poisonAttempts} times, not ${maxAttempts}`);
      if (!letter) violations.push('the poison message is not in the dead letters');
      else if (letter.attempts !== maxAttempts) violations.push(`its dead letter records ${letter.attempts} attempts, not ${maxAttempts}`);
      if (letters.length !== 1) violations.push(`${letters.length} dead letters, expected only the poison message`);

      const committed = new Map<string, number>();
      for (const message of messages) committed.set(message.key as string, message.payload.sequence);
      const missing = check.missing(committed);
      if (missing.lost > 0) violations.push(`${missing.lost} messages never reached the handler (${missing.examples.join('; ')})`);
      if (check.outOfOrder > 0)
        violations.push(`${check.outOfOrder} messages out of their key's order (${check.orderExamples.join('; ')})`);

      const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
      const rate = (count: number, ms: number) => `${Math.round(count / (ms / 1000)).toLocaleString('en-US')} msg/s`;
      const line =
        `${slowCalls.length} slow calls of ${plan.slowMs} ms (${seconds(stuckMs)} in all): other keys handled ${othersWhileStuck} messages meanwhile ` +
        `(${rate(othersWhileStuck, stuckMs)}), and sat idle for ${Math.round((100 * idleWhileStuckMs) / Math.max(stuckMs, 1))}% of that time waiting for the slow key to finish its batch`;
      log(line);
      return {
        runs: slowCalls.length,
        sent: messages.length,
        received: check.deliveries,
        lost: missing.lost,
        duplicated: check.duplicates,
        maxRecoveryMs: letter ? letter.lastFailedAt.getTime() - letter.firstFailedAt.getTime() : 0,
        violations,
        notes: [
          line,
          `all ${messages.length} messages through in ${seconds(finished - started)} (${rate(messages.length, finished - started)}), ${concurrency} lanes, batches of 1,000`,
          `poison message ${poisonKey}/${poisonSequence}: ${poisonAttempts} attempts, then dead letters; recovery = its first to last failure`,
        ],
      };
    } finally {
      await router.stop(5_000);
      await postbox.close(2_000);
    }
  },
};
