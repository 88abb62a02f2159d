import { validate as isUuid, v7 as uuidv7 } from 'uuid';
import { defaults } from '../config/defaults.js';
import { ValidationError } from '../errors/postbox-error.js';
import type { AppendRow } from '../log/append.js';
import type { MessageHeaders } from '../log/message.js';
import type { OutgoingMessage } from './outgoing-message.js';

export interface ValidationLimits {
  payloadLimitBytes: number;
}

const typedHeaders = ['traceId', 'correlationId', 'causationId', 'userId'] as const;
const reservedHeaders = new Set<string>([...typedHeaders, 'schemaVersion']);
// An own `__proto__` property is lost by any code that copies headers with plain assignment.
const unsafeHeaderNames = new Set(['__proto__']);

/** PostgreSQL text cannot hold NUL, and neither text nor jsonb accepts a lone UTF-16 surrogate. */
export function unstorableReason(value: string): string | undefined {
  if (value.includes('\u0000')) return 'contains a NUL character';
  if (!value.isWellFormed()) return 'contains a lone UTF-16 surrogate';
  return undefined;
}

/**
 * Embedded PGlite decodes every text value with a TextDecoder that drops a leading U+FEFF, so a
 * name starting with one would come back changed there; it is refused on both backends alike.
 */
function leadingMarkReason(value: string): string | undefined {
  return value.startsWith('\ufeff') ? 'starts with U+FEFF (a byte-order mark), which embedded PGlite drops when reading' : undefined;
}

export function checkName(
  field: string,
  value: unknown,
  maxLength: number,
  emptyCode?: 'POSTBOX_ERR_EMPTY_TOPIC' | 'POSTBOX_ERR_EMPTY_TYPE',
): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ValidationError(emptyCode ?? 'POSTBOX_ERR_BAD_NAME', `${field} must be a non-empty string (got ${describe(value)}).`, {
      field,
    });
  }
  const reason =
    value.length > maxLength ? `is longer than ${maxLength} characters` : (unstorableReason(value) ?? leadingMarkReason(value));
  if (reason) throw new ValidationError('POSTBOX_ERR_BAD_NAME', `${field} ${reason}.`, { field });
  return value;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return value === '' ? 'an empty string' : 'a blank string';
  return value === null ? 'null' : typeof value;
}

function badHeader(name: string, problem: string): ValidationError {
  return new ValidationError('POSTBOX_ERR_BAD_HEADER', `Header ${JSON.stringify(name.slice(0, 60))} ${problem}.`, {
    header: name.slice(0, 60),
  });
}

function headerText(name: string, value: unknown): string {
  if (typeof value !== 'string') throw badHeader(name, `must be a string (got ${typeof value})`);
  if (value.length > defaults.maxHeaderValueLength) throw badHeader(name, `is longer than ${defaults.maxHeaderValueLength} characters`);
  const reason = unstorableReason(value);
  if (reason) throw badHeader(name, reason);
  return value;
}

function buildHeaders(message: OutgoingMessage): MessageHeaders {
  const schemaVersion = message.schemaVersion ?? defaults.schemaVersion;
  if (!Number.isSafeInteger(schemaVersion) || schemaVersion < 1) {
    throw badHeader('schemaVersion', `must be a positive integer (got ${String(schemaVersion)})`);
  }
  const headers: MessageHeaders = { schemaVersion };
  for (const name of typedHeaders) {
    const value = message[name];
    if (value !== undefined && value !== null) headers[name] = headerText(name, value);
  }
  const custom = message.headers ?? {};
  if (typeof custom !== 'object' || Array.isArray(custom)) throw badHeader('headers', 'must be an object of string values');
  const names = Object.keys(custom);
  if (names.length > defaults.maxHeaderCount) throw badHeader('headers', `has more than ${defaults.maxHeaderCount} entries`);
  for (const name of names) {
    if (name === '' || name.length > defaults.maxNameLength)
      throw badHeader(name, `name must be 1 to ${defaults.maxNameLength} characters`);
    const reason = unstorableReason(name);
    if (reason) throw badHeader(name, `name ${reason}`);
    if (reservedHeaders.has(name)) throw badHeader(name, `is set through the message's own ${name} field, not headers`);
    if (unsafeHeaderNames.has(name)) throw badHeader(name, 'is not allowed as a header name');
    headers[name] = headerText(name, custom[name]);
  }
  return headers;
}

function withTrace(headers: MessageHeaders, trace: Readonly<Record<string, string>> | undefined): MessageHeaders {
  if (trace) for (const [name, value] of Object.entries(trace)) headers[name] ??= value;
  return headers;
}

function findUnstorableString(value: unknown): string | undefined {
  if (typeof value === 'string') return unstorableReason(value);
  if (Array.isArray(value)) {
    for (const item of value) {
      const reason = findUnstorableString(item);
      if (reason) return reason;
    }
  } else if (typeof value === 'object' && value !== null) {
    for (const [name, item] of Object.entries(value)) {
      const reason = unstorableReason(name) ?? findUnstorableString(item);
      if (reason) return reason;
    }
  }
  return undefined;
}

function serialisePayload(payload: unknown, limitBytes: number): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(payload);
  } catch (error) {
    throw new ValidationError(
      'POSTBOX_ERR_PAYLOAD_NOT_JSON',
      `The payload cannot be serialised as JSON: ${(error as Error).message}.`,
      {},
      { cause: error },
    );
  }
  if (json === undefined) {
    throw new ValidationError('POSTBOX_ERR_PAYLOAD_NOT_JSON', `The payload cannot be serialised as JSON (got ${typeof payload}).`);
  }
  // JSON.stringify writes \u only for control characters and lone surrogates, so most payloads skip this walk.
  if (json.includes('\\u')) {
    const reason = findUnstorableString(JSON.parse(json));
    if (reason) {
      throw new ValidationError('POSTBOX_ERR_PAYLOAD_NOT_JSON', `The payload ${reason}, which PostgreSQL JSON cannot store.`);
    }
  }
  const bytes = json.length * 3 <= limitBytes ? json.length : Buffer.byteLength(json);
  if (bytes > limitBytes) {
    throw new ValidationError(
      'POSTBOX_ERR_PAYLOAD_TOO_LARGE',
      `The payload is ${bytes} bytes as JSON, over the limit of ${limitBytes} bytes.`,
      { bytes, limitBytes },
    );
  }
  return json;
}

/**
 * Checks every rule before anything is written, and serialises the message for the log; throws a
 * ValidationError with a stable code. `trace` holds the W3C trace-context headers of the span that
 * writes the message; a message that already carries them keeps its own.
 */
export function prepareMessage(message: OutgoingMessage, limits: ValidationLimits, trace?: Readonly<Record<string, string>>): AppendRow {
  if (typeof message !== 'object' || message === null) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `A message must be an object (got ${message === null ? 'null' : typeof message}).`);
  }
  const topic = checkName('topic', message.topic, defaults.maxNameLength, 'POSTBOX_ERR_EMPTY_TOPIC');
  const type = checkName('type', message.type, defaults.maxNameLength, 'POSTBOX_ERR_EMPTY_TYPE');
  const key = message.key === undefined || message.key === null ? null : checkName('key', message.key, defaults.maxKeyLength);
  if (message.id !== undefined && !isUuid(message.id)) {
    throw new ValidationError('POSTBOX_ERR_BAD_OPTION', `id must be a UUID (got ${JSON.stringify(String(message.id).slice(0, 60))}).`);
  }
  return {
    // PostgreSQL returns uuids in lower case; the id handed back must be the one consumers see.
    id: message.id?.toLowerCase() ?? uuidv7(),
    topic,
    type,
    key,
    payloadJson: serialisePayload(message.payload, limits.payloadLimitBytes),
    headersJson: JSON.stringify(withTrace(buildHeaders(message), trace)),
  };
}
