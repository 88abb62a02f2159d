import type { Message, TopicMessages } from 'kafkajs';
import type { LogMessage } from '../../log/message.js';
import { toKafkaHeaders } from './kafka-headers.js';

/** A log message as a Kafka record: its key decides the partition, the value is the payload's JSON. */
export function toKafkaMessage(message: LogMessage): Message {
  return {
    key: message.key,
    value: JSON.stringify(message.payload),
    headers: toKafkaHeaders(message.id, message.type, message.headers),
  };
}

/** One entry per Kafka topic, each keeping the batch's log order, for a single sendBatch call. */
export function toTopicMessages(messages: readonly LogMessage[], topicFor: (logTopic: string) => string): TopicMessages[] {
  const byTopic = new Map<string, Message[]>();
  for (const message of messages) {
    const topic = topicFor(message.topic);
    let list = byTopic.get(topic);
    if (!list) {
      list = [];
      byTopic.set(topic, list);
    }
    list.push(toKafkaMessage(message));
  }
  return [...byTopic].map(([topic, list]) => ({ topic, messages: list }));
}
