import { Postbox } from 'postbox';
import { type DelayedSystem, type DueItem, writeChunk } from './delayed-system.js';
import { chunks } from './messages.js';
import { until } from './until.js';

/**
 * Postbox as an application runs it: a consumer group with its defaults, whose process also runs
 * the timekeeper (`timekeeper: 'auto'` starts it with the first consumer). Messages are written
 * with `deliverAt`, a bulk enqueue per transaction.
 */
export function postboxDelayed(url: string, name: string): DelayedSystem {
  let postbox: Postbox | undefined;
  return {
    label: 'Postbox consumer group, timekeeper in its process',
    async start(onHandled) {
      postbox = await Postbox.create({ databaseUrl: url, migrate: 'auto' });
      const consumer = postbox.consumer({
        group: name,
        topics: [name],
        handleBatch: async (messages) => {
          for (const message of messages) onHandled(message.payload as DueItem);
        },
        onError: (error) => console.error('postbox consumer:', error),
      });
      await consumer.start();
      const timekeeper = await postbox.startTimekeeper();
      await until(() => consumer.state === 'active', 'the consumer to hold its group');
      await until(() => timekeeper.state === 'active', 'the timekeeper to hold its lease');
    },
    async write(items) {
      const live = postbox as Postbox;
      for (const batch of chunks(items.length, writeChunk, (k) => items[k] as DueItem)) {
        await live.publish(batch.map((item) => ({ topic: name, type: 'timer.due', payload: item, deliverAt: new Date(item.due) })));
      }
    },
    async stop() {
      await postbox?.close();
    },
  };
}
