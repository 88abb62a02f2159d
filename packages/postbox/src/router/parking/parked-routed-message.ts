import { PostboxError } from '../../errors/postbox-error.js';
import type { ParkedMessage } from '../../parking/parked-message.js';
import type { ParkedCopy } from '../../parking/parked-store.js';
import type { RoutedMessage } from '../routed-message.js';

/** The whole message a parked row keeps. Only messages of the log are parked. */
export function toParkedCopy(message: RoutedMessage): ParkedCopy {
  if (message.source.kind !== 'log') {
    throw new PostboxError('POSTBOX_ERR_UNEXPECTED', `Message ${message.id} is not from the log; only messages of the log are parked.`);
  }
  return {
    messageId: message.id,
    topic: message.topic,
    type: message.type,
    key: message.key,
    payload: message.payload,
    headers: message.headers as ParkedCopy['headers'],
    position: { transactionId: message.source.transactionId, globalPosition: message.source.globalPosition },
    createdAt: message.createdAt,
  };
}

/** A parked message as its route handles it again. */
export function fromParkedMessage(parked: ParkedMessage): RoutedMessage {
  return {
    id: parked.messageId,
    topic: parked.topic,
    type: parked.type,
    key: parked.key,
    payload: parked.payload,
    headers: parked.headers,
    createdAt: parked.createdAt,
    source: { kind: 'log', transactionId: parked.position.transactionId, globalPosition: parked.position.globalPosition },
  };
}
