import type { KafkaMessage } from 'kafkajs';
import { DecodeError } from '../../errors/postbox-error.js';
import type { RoutedMessage } from '../../router/routed-message.js';
import { fromKafkaHeaders } from './kafka-headers.js';

export interface KafkaDecodeLimits {
  /** Larger values are not decoded. */
  maxMessageBytes: number;
  /** Bytes of an undecodable value kept as `raw`. */
  rawPreviewBytes: number;
}

export type KafkaDecodeFailure = 'empty' | 'too_large' | 'not_utf8' | 'not_json' | 'unstorable';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** PostgreSQL text and jsonb cannot hold NUL, so it becomes U+FFFD in keys, ids and header values. */
function storable(text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '\uFFFD') : text;
}

function storableHeaders(headers: Record<string, string | number>): Record<string, string | number> {
  const result: Record<string, string | number> = {};
  for (const [name, value] of Object.entries(headers)) result[storable(name)] = typeof value === 'string' ? storable(value) : value;
  return result;
}

/** True when a decoded JSON value holds a string jsonb refuses: a NUL, or an unpaired surrogate. */
function holdsUnstorableString(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000') || !value.isWellFormed();
  if (Array.isArray(value)) return value.some(holdsUnstorableString);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).some(([name, inner]) => holdsUnstorableString(name) || holdsUnstorableString(inner));
  }
  return false;
}

/**
 * The head of an undecodable value for its dead letter: text when it is UTF-8 without NUL (a
 * character cut at the end is dropped), otherwise `base64:` and the bytes in base64.
 */
export function rawPreview(value: Buffer, limitBytes: number): string {
  const head = value.subarray(0, limitBytes);
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: head.length < value.length });
    if (!text.includes('\u0000')) return text;
  } catch {
    // not UTF-8: kept as base64 below
  }
  return `base64:${head.toString('base64')}`;
}

function createdAt(timestamp: string): Date {
  const ms = Number(timestamp);
  return Number.isFinite(ms) && ms >= 0 ? new Date(ms) : new Date();
}

/**
 * A Kafka record as a routed message. The id is the `message-id` header, or topic, partition and
 * offset, so a redelivered record keeps its id. A value that is empty, too large, not UTF-8, not
 * JSON, or JSON that PostgreSQL cannot store comes with a DecodeError and its head as `raw`; the
 * router sends such a message to dead letters at once.
 */
export function decodeKafkaMessage(topic: string, partition: number, message: KafkaMessage, limits: KafkaDecodeLimits): RoutedMessage {
  const { id, type, headers } = fromKafkaHeaders(message.headers);
  const where = `${topic}/${partition}/${message.offset}`;
  const routed: RoutedMessage = {
    id: id ? storable(id) : `kafka:${topic}:${partition}:${message.offset}`,
    topic,
    type: type ? storable(type) : '',
    key: message.key === null ? null : storable(message.key.toString('utf8')),
    payload: null,
    headers: storableHeaders(headers),
    createdAt: createdAt(message.timestamp),
    source: { kind: 'kafka', partition, offset: message.offset },
  };
  const value = message.value ?? Buffer.alloc(0);
  const fail = (reason: KafkaDecodeFailure, text: string, cause?: unknown): RoutedMessage => ({
    ...routed,
    decodeError: new DecodeError('POSTBOX_ERR_DECODE', `Kafka message ${where} ${text}`, { reason, bytes: value.length }, { cause }),
    raw: rawPreview(value, limits.rawPreviewBytes),
  });
  if (value.length === 0) return fail('empty', 'has an empty value; a JSON payload was expected.');
  if (value.length > limits.maxMessageBytes) {
    return fail(
      'too_large',
      `is ${value.length} bytes, over maxMessageBytes (${limits.maxMessageBytes}); its first ${Math.min(value.length, limits.rawPreviewBytes)} bytes are kept.`,
    );
  }
  let text: string;
  try {
    text = strictUtf8.decode(value);
  } catch (error) {
    return fail('not_utf8', 'is not valid UTF-8; its first bytes are kept in base64.', error);
  }
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch (error) {
    return fail('not_json', `is not valid JSON: ${(error as Error).message}`, error);
  }
  if (text.includes('\\u') && holdsUnstorableString(payload)) {
    return fail('unstorable', 'holds a \\u0000 character or an unpaired surrogate, which PostgreSQL cannot store in jsonb.');
  }
  return { ...routed, payload };
}
