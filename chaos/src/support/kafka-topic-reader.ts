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

/**
 * Every record of a topic, from the beginning of each partition up to the high watermark seen
 * when the read starts, read by a consumer group of its own (its offsets are never committed).
 */
export async function readWholeTopic(kafka: Kafka, topic: string, timeoutMs: number): Promise<TopicRecord[]> {
  const total = await topicRecordCount(kafka, topic);
  const records: TopicRecord[] = [];
  if (total === 0) return records;
  const consumer = kafka.consumer({ groupId: `chaos-reader-${randomUUID()}`, maxWaitTimeInMs: 100, maxBytes: 50 * 1024 * 1024 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
          records.push({ partition: batch.partition, offset: message.offset, key: message.key?.toString() ?? null, headers });
        }
      },
    });
    await waitFor(() => records.length >= total, timeoutMs, `${total} records of Kafka topic ${topic} (read ${records.length})`, 50);
    return records;
  } finally {
    await consumer.disconnect();
  }
}
