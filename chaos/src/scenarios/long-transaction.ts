import pg from 'pg';
import { type LogMessage, Postbox, PostboxMetrics } from 'postbox';
import type { Scenario, ScenarioOutcome } from '../scenario.js';
import { countDeliveries, tally } from '../support/delivery-count.js';
import { createProducedTable, producedIds, SteadyProducer } from '../support/steady-producer.js';
import { delay, waitFor } from '../support/wait.js';
import { waitForCount } from '../support/wait-for-count.js';

const topic = 'orders';
const group = 'patient-reader';
const longMessages = 5;

interface Hold {
  holdMs: number;
  end: 'commit' | 'rollback';
}

const plans: Record<'full' | 'reduced', { holds: Hold[]; rate: number; betweenMs: number }> = {
  full: {
    holds: [
      { holdMs: 12_000, end: 'commit' },
      { holdMs: 6_000, end: 'rollback' },
    ],
    rate: 300,
    betweenMs: 2_000,
  },
  reduced: { holds: [{ holdMs: 3_000, end: 'commit' }], rate: 200, betweenMs: 500 },
};

interface Delivery {
  id: string;
  transactionId: bigint;
  globalPosition: bigint;
}

async function watermarkDelaySeconds(metrics: PostboxMetrics): Promise<number> {
  const gauge = metrics.registry.getSingleMetric('postbox_watermark_delay_seconds');
  const value = (await gauge?.get())?.values[0]?.value;
  if (value === undefined) throw new Error('postbox_watermark_delay_seconds has no value');
  return value;
}

function later(a: Delivery, b: Delivery): boolean {
  return a.transactionId > b.transactionId || (a.transactionId === b.transactionId && a.globalPosition > b.globalPosition);
}

export const longTransaction: Scenario = {
  name: 'long-transaction',
  summary:
    'hold a writing transaction open for seconds while others publish: readers wait without skipping it, the watermark-delay metric shows it, readers catch up when it ends',
  async run({ mode, databaseUrl, log }): Promise<ScenarioOutcome> {
    const plan = plans[mode];
    const postbox = await Postbox.create({ databaseUrl, migrate: 'auto' });
    const metrics = new PostboxMetrics(postbox.db);
    const producer = new SteadyProducer({
      postbox,
      topic,
      messagesPerSecond: plan.rate,
      messagesPerTransaction: 5,
      message: (sequence) => ({ topic, type: 'order.placed', key: `key-${sequence % 16}`, payload: { sequence } }),
    });
    const holder = new pg.Client({ connectionString: databaseUrl });
    holder.on('error', () => undefined);
    const violations: string[] = [];
    const deliveries: Delivery[] = [];
    const deliveredIds = new Set<string>();
    let open: { transactionId: bigint } | undefined;
    let passedOpen = 0;
    const reader = postbox.consumer({
      group,
      topics: [topic],
      handleBatch: async (messages: LogMessage[]) => {
        for (const message of messages) {
          if (open && message.transactionId > open.transactionId) passedOpen += 1;
          deliveries.push({ id: message.id, transactionId: message.transactionId, globalPosition: message.globalPosition });
          deliveredIds.add(message.id);
        }
      },
    });
    try {
      await createProducedTable(postbox.db);
      await holder.connect();
      await reader.start();
      producer.start();
      const catchUps: number[] = [];
      const lines: string[] = [];
      const longIds: { ids: string[]; end: Hold['end'] }[] = [];

      for (const hold of plan.holds) {
        await delay(plan.betweenMs);
        await holder.query('begin');
        const ids = await postbox.enqueue(
          holder,
          Array.from({ length: longMessages }, (_, n) => ({ topic, type: 'order.long', key: 'long', payload: { n } })),
        );
        const { rows } = await holder.query<{ xid: string }>('select pg_current_xact_id()::text as xid');
        const opened = performance.now();
        open = { transactionId: BigInt(rows[0]?.xid as string) };
        const deliveredAtOpen = deliveries.length;
        const shortfalls: string[] = [];
        let lastDelay = 0;
        while (performance.now() - opened < hold.holdMs) {
          await delay(250);
          const elapsed = (performance.now() - opened) / 1000;
          lastDelay = await watermarkDelaySeconds(metrics);
          if (elapsed > 1 && lastDelay < elapsed - 1) shortfalls.push(`${lastDelay.toFixed(1)} s at ${elapsed.toFixed(1)} s`);
        }
        const heldBack = (await postbox.groupStatus(group))[0]?.lagMessages ?? 0;
        const deliveredDuringHold = deliveries.length - deliveredAtOpen;
        // The transaction counts as open until its end is sent, not until the reply is read: once the
        // server has committed, a reader's batch can be handled before this process reads that reply.
        open = undefined;
        await holder.query(hold.end);
        const ended = performance.now();
        longIds.push({ ids, end: hold.end });
        if (shortfalls.length > 0) {
          violations.push(`the watermark-delay metric fell behind the open transaction's age: ${shortfalls.slice(0, 3).join(', ')}`);
        }

        // Everything committed by now, the held transaction's messages included, must arrive.
        const expected = [...(await producedIds(postbox.db, topic)), ...(hold.end === 'commit' ? ids : [])];
        const arrived = () => expected.filter((id) => deliveredIds.has(id)).length;
        const caughtUp = await waitForCount(arrived, expected.length, { stallMs: 10_000, timeoutMs: 30_000 });
        if (!caughtUp.reached)
          violations.push(`after the ${hold.end}, readers had ${caughtUp.count} of the ${expected.length} messages committed by then`);
        const catchUpMs = performance.now() - ended;
        catchUps.push(catchUpMs);
        const settled = await waitFor(
          async () => (await watermarkDelaySeconds(metrics)) < hold.holdMs / 2_000,
          10_000,
          'the watermark delay to drop',
          100,
        ).then(
          () => true,
          () => false,
        );
        if (!settled) violations.push(`the watermark-delay metric still showed the transaction 10 s after its ${hold.end}`);
        const line =
          `held ${hold.holdMs / 1000} s then ${hold.end}: watermark delay ${lastDelay.toFixed(1)} s at the end, ` +
          `${deliveredDuringHold} older messages delivered and ${heldBack} held back meanwhile, caught up ${Math.round(catchUpMs)} ms after the ${hold.end}, ` +
          `metric back to ${(await watermarkDelaySeconds(metrics)).toFixed(1)} s`;
        lines.push(line);
        log(line);
      }

      await delay(plan.betweenMs);
      await producer.stop();
      const sent = [...(await producedIds(postbox.db, topic))];
      const committedLong = longIds.filter((held) => held.end === 'commit').flatMap((held) => held.ids);
      const rolledBackLong = new Set(longIds.filter((held) => held.end === 'rollback').flatMap((held) => held.ids));
      const expectedIds = [...sent, ...committedLong];
      const drained = await waitForCount(() => expectedIds.filter((id) => deliveredIds.has(id)).length, expectedIds.length, {
        stallMs: 10_000,
        timeoutMs: 30_000,
      });
      if (!drained.reached) violations.push(`readers stopped at ${drained.count} of ${expectedIds.length} messages`);
      await waitFor(async () => (await postbox.groupStatus(group))[0]?.lagMessages === 0, 10_000, 'zero lag').catch(() => undefined);
      await reader.stop();

      const count = countDeliveries(expectedIds, tally(deliveries.map((d) => d.id)));
      const rolledBackDelivered = deliveries.filter((d) => rolledBackLong.has(d.id)).length;
      const outOfOrder = deliveries.filter((d, index) => index > 0 && !later(d, deliveries[index - 1] as Delivery)).length;
      if (count.lost > 0) violations.push(`${count.lost} committed messages were never delivered (e.g. ${count.lostExamples.join(', ')})`);
      if (count.unexpected - rolledBackDelivered > 0)
        violations.push(`${count.unexpected - rolledBackDelivered} delivered messages were never sent`);
      if (rolledBackDelivered > 0) violations.push(`${rolledBackDelivered} messages of the rolled-back transaction were delivered`);
      if (count.duplicated > 0) violations.push(`${count.duplicated} messages were delivered twice without any failure`);
      if (passedOpen > 0) violations.push(`${passedOpen} messages newer than the open transaction were delivered while it was open`);
      if (outOfOrder > 0) violations.push(`${outOfOrder} deliveries went backwards in log order`);

      return {
        runs: plan.holds.length,
        sent: expectedIds.length,
        received: count.received,
        lost: count.lost,
        duplicated: count.duplicated,
        maxRecoveryMs: Math.max(0, ...catchUps),
        violations,
        notes: [...lines, 'recovery = from the end of the held transaction until readers had every message committed by then'],
      };
    } finally {
      await producer.stop();
      await holder.end().catch(() => undefined);
      await postbox.close(2_000);
    }
  },
};
