import { randomBytes, randomUUID } from 'node:crypto';
import type { OutgoingMessage } from 'postbox';

export const topic = 'orders';

export interface OrderPayload {
  orderId: string;
  amount: number;
}

export function payload(i: number): OrderPayload {
  return { orderId: randomUUID(), amount: 100 + (i % 900) };
}

export function orderMessage(i: number): OutgoingMessage<OrderPayload> {
  const data = payload(i);
  return { topic, type: 'order.created', key: data.orderId, payload: data };
}

/** count items made by make, in chunks of size. */
export function chunks<T>(count: number, size: number, make: (i: number) => T): T[][] {
  const result: T[][] = [];
  for (let start = 0; start < count; start += size) {
    result.push(Array.from({ length: Math.min(size, count - start) }, (_, k) => make(start + k)));
  }
  return result;
}

/** A UUIDv7 (millisecond time first), like the ids Postbox generates, so raw rows land in the unique index the same way. */
export function uuidv7(): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(Date.now(), 0, 6);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
