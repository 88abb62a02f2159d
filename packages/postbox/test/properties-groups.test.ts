import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaults } from '../src/config/defaults.js';
import { isPostboxError } from '../src/errors/postbox-error.js';
import type { LogMessage } from '../src/log/message.js';
import { backends, type TestPostbox } from './support/backends.js';
import { hostileText, propertyRuns, storable, textAround } from './support/properties.js';
import { waitFor } from './support/wait.js';

const name = fc.oneof({ weight: 10, arbitrary: hostileText }, { weight: 1, arbitrary: textAround(defaults.maxNameLength) });

function validGroup(group: string): boolean {
  return group.trim() !== '' && group.length <= defaults.maxNameLength && storable(group);
}

function validTopic(topic: string): boolean {
  return topic !== '' && storable(topic);
}

function publishable(topic: string): boolean {
  return topic.trim() !== '' && topic.length <= defaults.maxNameLength && storable(topic) && !topic.startsWith('\ufeff');
}

describe.each(backends)('consumer groups on $name under hostile names', (backend) => {
  let handle: TestPostbox;

  beforeAll(async () => {
    handle = await backend.open();
  });

  afterAll(async () => {
    await handle?.cleanup();
  });

  it('reads as a group of exactly that name, or refuses the name with a typed code', async () => {
    const { postbox } = handle;
    let created = 0;
    let delivered = 0;
    await fc.assert(
      fc.asyncProperty(name, fc.array(name, { minLength: 1, maxLength: 3 }), async (group, topics) => {
        const received: LogMessage[] = [];
        let consumer: ReturnType<typeof postbox.consumer>;
        try {
          consumer = postbox.consumer({
            group,
            topics,
            pollIntervalMs: 50,
            handleBatch: async (messages) => {
              received.push(...messages);
            },
          });
        } catch (error) {
          if (!isPostboxError(error)) throw error;
          expect(['POSTBOX_ERR_BAD_NAME', 'POSTBOX_ERR_EMPTY_TOPIC']).toContain(error.code);
          expect(validGroup(group) && topics.every(validTopic)).toBe(false);
          return;
        }
        expect(validGroup(group) && topics.every(validTopic)).toBe(true);
        await consumer.start();
        try {
          const topic = topics[0] as string;
          // Delivery waits for the server-wide watermark, so it is checked on the first groups only.
          if (publishable(topic) && delivered < 6) {
            delivered++;
            const [id] = await postbox.publish({ topic, type: 'probe', payload: { group } });
            await waitFor(() => received.some((message) => message.id === id), 20_000, 'the probe');
            expect(received.find((message) => message.id === id)?.topic).toBe(topic);
          }
        } finally {
          await consumer.stop(5_000);
        }
        // Compared by the database, byte for byte.
        const { rows } = await postbox.db.query<{ topics: string[] }>('select topics from postbox.consumer_groups where group_name = $1', [
          group,
        ]);
        expect(rows).toHaveLength(1);
        expect([...(rows[0]?.topics ?? [])].sort()).toEqual([...new Set(topics)].sort());
        expect(await postbox.deleteGroup(group)).toBe(true);
        created++;
      }),
      propertyRuns(30),
    );
    expect(created).toBeGreaterThan(0);
    expect(delivered).toBeGreaterThan(0);
  });
});
