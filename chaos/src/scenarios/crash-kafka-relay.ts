import { Postbox } from 'postbox';
import { createKafka, kafkaHeaderNames } from 'postbox/kafka';
import { type MockCluster, startMockCluster } from '../../../packages/postbox/test/support/kafka-mock.js';
import type { Scenario } from '../scenario.js';
import { ProcessGroup, processEntry } from '../support/child-process.js';
import { tally } from '../support/delivery-count.js';
import { runInterruptedGroups } from '../support/interrupted-group-run.js';
import { startTopicReader, type TopicReader } from '../support/kafka-topic-reader.js';

const leaseTtlMs = 1_000;
const topic = 'chaos-relayed';
const group = 'chaos-relay';
const batchSize = 100;

const settings = {
  full: { kills: 15, poolSize: 3, messagesPerSecond: 500 },
  reduced: { kills: 2, poolSize: 3, messagesPerSecond: 300 },
};

/**
 * kill -9 of the Kafka relay process that holds the relay's group. The relay commits its checkpoint
 * only after Kafka acknowledged a batch, so nothing is lost, and a kill between the acknowledgement
 * and the commit resends at most that batch: at most kills × batch size duplicates in the topic.
 */
export const crashKafkaRelay: Scenario = {
  name: 'crash-kafka-relay',
  summary: 'kill -9 the Kafka relay while messages flow: nothing lost in the topic, at most one batch resent per kill',
  async run(context) {
    const { kills, poolSize, messagesPerSecond } = settings[context.mode];
    const processes = new ProcessGroup();
    let cluster: MockCluster | undefined;
    let reader: Promise<TopicReader> | undefined;
    const postbox = await Postbox.create({ databaseUrl: context.databaseUrl, migrate: 'auto' });
    try {
      cluster = await startMockCluster();
      await cluster.createTopic(topic, 4);
      const brokers = cluster.bootstrap;
      // The reader joins its group while the relays start, and reads the topic as it fills.
      const topicReader = startTopicReader(createKafka({ brokers: cluster.brokers }), topic);
      reader = topicReader;
      const outcome = await runInterruptedGroups({
        context,
        postbox,
        flows: [
          {
            label: 'Kafka records',
            topic,
            group,
            messagesPerSecond,
            messagesPerTransaction: 25,
            message: (sequence) => ({ topic, type: 'order.placed', key: `customer-${sequence % 50}`, payload: { sequence } }),
            observe: async () => {
              const records = await (await topicReader).records(60_000);
              return tally(records.map((record) => record.headers[kafkaHeaderNames.id] ?? `no message-id header at ${record.offset}`));
            },
            duplicatesAllowed: (interruptions) => interruptions * batchSize,
          },
        ],
        startProcess: (index) =>
          processes.start(`relay-${index}`, processEntry('kafka-relay.ts'), {
            DATABASE_URL: context.databaseUrl,
            KAFKA_BROKERS: brokers,
            GROUP: group,
            TOPIC: topic,
            LEASE_TTL_MS: String(leaseTtlMs),
            BATCH_SIZE: String(batchSize),
          }),
        leaseTtlMs,
        signal: 'SIGKILL',
        interruptions: kills,
        poolSize,
        runMs: [0, 1_500],
        catchUpTimeoutMs: 60_000,
      });
      outcome.notes?.push(`duplicate allowance: ${outcome.runs} kills × batches of ${batchSize} = ${outcome.runs * batchSize}`);
      return outcome;
    } finally {
      await processes.killAll();
      await (await reader?.catch(() => undefined))?.stop();
      await postbox.close(2_000);
      await cluster?.stop();
    }
  },
};
