import type { LogMessage } from '../log/message.js';

/** One NDJSON line; positions are strings because they outgrow JSON numbers. */
export function jsonLine(message: LogMessage): string {
  return JSON.stringify({
    id: message.id,
    topic: message.topic,
    type: message.type,
    key: message.key,
    payload: message.payload,
    headers: message.headers,
    position: { transactionId: String(message.transactionId), globalPosition: String(message.globalPosition) },
    createdAt: message.createdAt.toISOString(),
  });
}

export function readableLine(message: LogMessage): string {
  const key = message.key === null ? '' : ` key=${message.key}`;
  return `${message.createdAt.toISOString()} ${message.topic} ${message.type}${key} ${JSON.stringify(message.payload)} @${message.transactionId}/${message.globalPosition}`;
}
