import { Postbox, PostboxMetrics, Router } from 'postbox';
import { createKafka, createKafkaRelay, kafkaHeaderNames, kafkaSource } from 'postbox/kafka';
import { type MockCluster, startMockCluster } from '../../../packages/postbox/test/support/kafka-mock.js';
import type { Scenario, ScenarioOutcome } from '../scenario.js';
import { countDeliveries, tally } from '../support/delivery-count.js';
import { readWholeTopic } from '../support/kafka-topic-reader.js';
import { createProducedTable, producedIds, SteadyProducer } from '../support/steady-producer.js';
import { delay, waitFor } from '../support/wait.js';
import { waitForCount } from '../support/wait-for-count.js';

const topic = 'outbound';
const relayGroup = 'outage-relay';
const ingestGroup = 'outage-ingest';
/** The relay's and the subscriber's batch: what one failed send, or one outage of the subscriber, may repeat at most. */
const batchSize = 500;

const plans = {
  full: { outagesMs: [3_000, 8_000], rate: 400, betweenMs: 3_000 },
  reduced: { outagesMs: [2_000], rate: 300, betweenMs: 500 },
} as const;

/** Waits for a counter to move past where it was, and says how long that took (undefined: not within timeoutMs). */
async function timeToProgress(read: () => number, timeoutMs: number): Promise<number | undefined> {
  const from = read();
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (read() > from) return performance.now() - started;
    await delay(10);
  }
  return undefined;
}

export const kafkaBrokerOutage: Scenario = {
  name: 'kafka-broker-outage',
  summary:
    'take the Kafka broker down and up while the relay sends log messages to it and a Kafka subscriber writes them to a table: 0 lost',
  async run({ mode, databaseUrl, log }): Promise<ScenarioOutcome> {
    const plan = plans[mode];
    let cluster: MockCluster | undefined;
    let router: Router | undefined;
    const postbox = await Postbox.create({ databaseUrl, migrate: 'auto' });
    const producer = new SteadyProducer({
      postbox,
      topic,
      messagesPerSecond: plan.rate,
      messagesPerTransaction: 10,
      message: (sequence) => ({ topic, type: 'outbound', key: `key-${sequence % 32}`, payload: { sequence } }),
    });
    const metrics = new PostboxMetrics();
    // A send fails at the first refused request and within 2 s (by default KafkaJS retries 3 times
    // within 25 s), so that the outage makes sends fail and their batches go through the relay's own
    // retry, where a checkpoint that passed an unsent batch would lose it. The mock cluster refuses
    // the idempotent producer.
    const relay = (brokers: string[]) =>
      createKafkaRelay(postbox, {
        kafka: { brokers },
        group: relayGroup,
        topics: [topic],
        batchSize,
        sendTimeoutMs: 2_000,
        sendRetries: 0,
        idempotent: false,
        metrics,
      });
    let running: ReturnType<typeof relay> | undefined;
    try {
      cluster = await startMockCluster();
      await cluster.createTopic(topic, 4);
      await createProducedTable(postbox.db);
      await postbox.db.exec('create table chaos_kafka_sink (message_id text not null)');
      running = relay(cluster.brokers);
      await running.start();
      let delivered = 0;
      router = new Router(postbox).addHandler({
        name: ingestGroup,
        topics: [topic],
        // A session of 6 s instead of KafkaJS's 30 s: after an outage the group rejoins within seconds.
        source: kafkaSource({
          kafka: { brokers: cluster.brokers },
          groupId: ingestGroup,
          startFrom: 'earliest',
          sessionTimeoutMs: 6_000,
          heartbeatIntervalMs: 2_000,
        }),
        transactional: true,
        batchSize,
        handleBatch: async (messages, context) => {
          await context.tx?.query('insert into chaos_kafka_sink (message_id) select unnest($1::text[])', [messages.map((m) => m.id)]);
          delivered += messages.length;
        },
      });
      await router.start();
      producer.start();

      const violations: string[] = [];
      const recoveries: number[] = [];
      const outageLines: string[] = [];
      // Messages the broker acknowledged to the relay, from its metric (no database round trip).
      let published = 0;
      const publishedNow = () => published;
      const watchRelay = setInterval(() => {
        metrics.outboxEventsProcessed.get().then((metric) => {
          published = metric.values.filter((value) => value.labels.status === 'published').reduce((sum, value) => sum + value.value, 0);
        });
      }, 10);
      try {
        for (const [index, outageMs] of plan.outagesMs.entries()) {
          await delay(plan.betweenMs);
          await cluster.down();
          await delay(outageMs);
          await cluster.up();
          const [relayMs, ingestMs] = await Promise.all([timeToProgress(publishedNow, 120_000), timeToProgress(() => delivered, 120_000)]);
          const label = `broker down ${outageMs} ms`;
          for (const [name, ms] of [
            ['the relay', relayMs],
            ['the Kafka subscriber', ingestMs],
          ] as const) {
            if (ms === undefined) violations.push(`after outage ${index + 1} (${label}), ${name} made no progress within 120 s`);
          }
          recoveries.push(Math.max(relayMs ?? 120_000, ingestMs ?? 120_000));
          const ms = (value: number | undefined) => (value === undefined ? 'never' : `${Math.round(value)} ms`);
          const line = `${label}: relay sending again ${ms(relayMs)} after the broker came back, the subscriber delivering again ${ms(ingestMs)}`;
          outageLines.push(line);
          log(line);
        }
        await delay(plan.betweenMs);
        await producer.stop();
      } finally {
        clearInterval(watchRelay);
      }

      const sentIds = await producedIds(postbox.db, topic);
      await waitFor(async () => (await postbox.groupStatus(relayGroup))[0]?.lagMessages === 0, 60_000, 'the relay to catch up').catch(
        (error: Error) => violations.push(error.message),
      );
      const distinctInSink = async () =>
        Number((await postbox.db.query<{ n: number }>('select count(distinct message_id)::int as n from chaos_kafka_sink')).rows[0]?.n);
      const ingested = await waitForCount(distinctInSink, sentIds.length, { stallMs: 40_000, timeoutMs: 120_000, intervalMs: 100 });
      if (!ingested.reached) violations.push(`the Kafka subscriber stopped at ${ingested.count} of ${sentIds.length}`);
      await router.stop(10_000);
      await running.stop(10_000);

      const records = await readWholeTopic(createKafka({ brokers: cluster.brokers }), topic, 60_000);
      const inKafka = countDeliveries(
        sentIds,
        tally(records.map((record) => record.headers[kafkaHeaderNames.id] ?? 'no message-id header')),
      );
      const { rows } = await postbox.db.query<{ message_id: string }>('select message_id from chaos_kafka_sink');
      const inSink = countDeliveries(sentIds, tally(rows.map((row) => row.message_id)));
      const outages = plan.outagesMs.length;
      const failedSends = (await metrics.outboxErrors.get()).values.reduce((sum, value) => sum + value.value, 0);
      if (inKafka.lost > 0) violations.push(`${inKafka.lost} sent messages never reached Kafka (e.g. ${inKafka.lostExamples.join(', ')})`);
      if (inSink.lost > 0) violations.push(`${inSink.lost} sent messages never reached the table (e.g. ${inSink.lostExamples.join(', ')})`);
      for (const [where, count] of [
        ['Kafka', inKafka],
        ['the table', inSink],
      ] as const) {
        if (count.unexpected > 0) violations.push(`${count.unexpected} message ids in ${where} were never sent`);
      }
      // A batch goes again only after its send failed or timed out, and a timed-out send may still land.
      const relayAllowance = failedSends * batchSize;
      if (inKafka.duplicated > relayAllowance) violations.push(`Kafka holds ${inKafka.duplicated} duplicates, over ${relayAllowance}`);
      const sinkAllowance = inKafka.duplicated + outages * batchSize;
      if (inSink.duplicated > sinkAllowance) violations.push(`the table holds ${inSink.duplicated} duplicates, over ${sinkAllowance}`);

      return {
        runs: outages,
        sent: sentIds.length,
        received: inSink.received,
        lost: Math.max(inKafka.lost, inSink.lost),
        duplicated: inSink.duplicated,
        maxRecoveryMs: Math.max(0, ...recoveries),
        violations,
        notes: [
          ...outageLines,
          `${failedSends} relay sends failed during the outages and were retried`,
          `Kafka holds ${inKafka.received} records for ${inKafka.sent} messages (${inKafka.duplicated} resent, allowance ${relayAllowance}); received and duplicated count the table (allowance ${sinkAllowance})`,
        ],
      };
    } finally {
      await producer.stop();
      await router?.stop(5_000).catch(() => false);
      await running?.stop(5_000).catch(() => false);
      await postbox.close(2_000);
      await cluster?.stop();
    }
  },
};
