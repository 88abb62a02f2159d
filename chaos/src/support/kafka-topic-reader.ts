import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { waitFor } from './wait.js';

export interface TopicRecord {
  partition: number;
  offset: string;
  key: string | null;
  headers: Record<string, string>;
}

/** How many records a topic holds: the sum of its partitions' high watermarks. */
export async function topicRecordCount(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, partition) => sum + Number(partition.high), 0);
  } finally {
    await admin.disconnect();
  }
}

export interface TopicReader {
  /** Every record of the topic so far, once as many have been read as the topic holds now. */
  records(timeoutMs: number): Promise<TopicRecord[]>;
  stop(): Promise<void>;
}

/**
 * Reads a topic from the beginning of each partition with a consumer group of its own (its offsets
 * are never committed), from now until stop(). Start it early: joining a group takes seconds.
 */
export async function startTopicReader(kafka: Kafka, topic: string): Promise<TopicReader> {
  const read: TopicRecord[] = [];
  const consumer = kafka.consumer({ groupId: `chaos-reader-${randomUUID()}`, maxWaitTimeInMs: 100, maxBytes: 50 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      for (const message of batch.messages) {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
        read.push({ partition: batch.partition, offset: message.offset, key: message.key?.toString() ?? null, headers });
      }
    },
  });
  return {
    async records(timeoutMs) {
      const total = await topicRecordCount(kafka, topic);
      await waitFor(
        () => read.length >= total,
        timeoutMs,
        () => `${total} records of Kafka topic ${topic} (read ${read.length})`,
        50,
      );
      return [...read];
    },
    stop: () => consumer.disconnect(),
  };
}

/** Every record of a topic, up to the high watermark seen when the read starts (joining the reader's group takes seconds). */
export async function readWholeTopic(kafka: Kafka, topic: string, timeoutMs: number): Promise<TopicRecord[]> {
  const reader = await startTopicReader(kafka, topic);
  try {
    return await reader.records(timeoutMs);
  } finally {
    await reader.stop();
  }
}
