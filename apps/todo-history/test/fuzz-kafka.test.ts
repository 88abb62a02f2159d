import fc from 'fast-check';
import type { Producer } from 'kafkajs';
import { createKafka } from 'postbox/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockCluster, startMockCluster } from '../../../packages/postbox/test/support/kafka-mock.js';
import { propertyRuns } from '../../../packages/postbox/test/support/properties.js';
import { historyRows, openSystem, sampleEvent, type TestSystem, waitFor } from './support/system.js';

const topic = 'todo-history-events';

/** A valid todo-history event of its own task, so its row can be found. */
function goodEvent(taskId: string): string {
  return JSON.stringify(sampleEvent({ payload: { entityId: taskId, taskId } }));
}

/** Values no decoder should take for an event: random bytes, cut-off JSON, JSON of another shape, nothing at all. */
const badValue = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
  fc
    .tuple(fc.string({ maxLength: 12 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }))
    .map(([id, cut]) => {
      const whole = goodEvent(`cut-${id}`);
      return Buffer.from(whole.slice(0, Math.floor(cut * whole.length)));
    })
    .filter((value) => value.length > 0),
  fc.jsonValue({ maxDepth: 2 }).map((value) => Buffer.from(JSON.stringify(value))),
  fc.constantFrom(
    Buffer.alloc(0),
    Buffer.from('\ufeff'),
    Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
    Buffer.from('{"eventType":"created","payload":{"entity":"Task","entityId":"a\\u0000b"}}'),
    Buffer.from('"{\\"eventType\\": \\"created\\"'),
  ),
);
const badMessage = fc.record({
  value: fc.oneof({ weight: 9, arbitrary: badValue }, { weight: 1, arbitrary: fc.constant(null) }),
  header: fc.option(
    fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
    { nil: undefined },
  ),
});

describe('random bytes on the history topic (Kafka mock cluster)', () => {
  let cluster: MockCluster;
  let system: TestSystem;
  let producer: Producer;

  beforeAll(async () => {
    cluster = await startMockCluster();
    await cluster.createTopic(topic, 2);
    system = await openSystem('postgres', { KAFKA_BROKERS: cluster.bootstrap, KAFKA_IDEMPOTENT: 'false' });
    producer = createKafka({ brokers: cluster.brokers }).producer();
    await producer.connect();
  }, 60_000);

  afterAll(async () => {
    await producer?.disconnect();
    await system?.cleanup();
    await cluster?.stop();
  });

  it('sends every bad record to dead letters and stores every good one around it', async () => {
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(badMessage, { minLength: 1, maxLength: 25 }), fc.string({ maxLength: 6 }), async (bad, key) => {
        round++;
        const group = system.config.history.group;
        const lettersBefore = (await system.postbox.deadLetters.list({ group, limit: 1_000 })).length;
        const good = [`round-${round}-first`, `round-${round}-last`];
        // One key, so one partition: the bad records sit between the two good ones.
        await producer.send({
          topic,
          acks: -1,
          messages: [
            { key, value: goodEvent(good[0] as string) },
            ...bad.map(({ value, header }) => ({ key, value, headers: header ? { 'x-noise': header } : undefined })),
            { key, value: goodEvent(good[1] as string) },
          ],
        });
        await waitFor(
          async () => (await historyRows(system, 'task_id = any($1)', [good])).length === 2,
          30_000,
          `the good records of round ${round}`,
        );
        await waitFor(
          async () => (await system.postbox.deadLetters.list({ group, limit: 1_000 })).length === lettersBefore + bad.length,
          30_000,
          `${bad.length} dead letters in round ${round}`,
        );
        const letters = await system.postbox.deadLetters.list({ group, limit: 1_000 });
        for (const letter of letters.slice(lettersBefore)) {
          expect(letter).toMatchObject({ source: 'kafka', topic, errorCode: 'POSTBOX_ERR_DECODE', status: 'pending' });
          expect(letter.errorMessage.length).toBeGreaterThan(0);
        }
      }),
      propertyRuns(4),
    );
    // Nothing but the good records became history.
    expect((await historyRows(system)).length).toBe(round * 2);
  });
});
