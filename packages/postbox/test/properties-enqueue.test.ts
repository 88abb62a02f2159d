import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaults } from '../src/config/defaults.js';
import { isPostboxError } from '../src/errors/postbox-error.js';
import { type LogMessage, type MessageRow, toLogMessage } from '../src/log/message.js';
import type { OutgoingMessage } from '../src/outbox/outgoing-message.js';
import { backends, type TestPostbox } from './support/backends.js';
import { hostileText, propertyRuns, storable, textAround } from './support/properties.js';
import { waitFor } from './support/wait.js';

const payloadLimitBytes = 2_048;
const reservedHeaders = ['traceId', 'correlationId', 'causationId', 'userId', 'schemaVersion', '__proto__'];
const validationCodes = [
  'POSTBOX_ERR_EMPTY_TOPIC',
  'POSTBOX_ERR_EMPTY_TYPE',
  'POSTBOX_ERR_BAD_NAME',
  'POSTBOX_ERR_PAYLOAD_NOT_JSON',
  'POSTBOX_ERR_PAYLOAD_TOO_LARGE',
  'POSTBOX_ERR_BAD_HEADER',
  'POSTBOX_ERR_BAD_OPTION',
  'POSTBOX_ERR_DUPLICATE_ID',
];

const name = (limit: number) => fc.oneof({ weight: 12, arbitrary: hostileText }, { weight: 1, arbitrary: textAround(limit) });
const headerName = fc.oneof({ weight: 12, arbitrary: hostileText }, { weight: 1, arbitrary: fc.constantFrom(...reservedHeaders, 'x') });
const headerValue = fc.oneof({ weight: 12, arbitrary: hostileText }, { weight: 1, arbitrary: textAround(defaults.maxHeaderValueLength) });
// A small pool of ids, so that some messages reuse an id already in the log.
const idPool = ['0190f2a4-8b1e-7c3d-9e4f-5a6b7c8d9e0f', '0190F2A4-8B1E-7C3D-9E4F-5A6B7C8D9E10', 'not-a-uuid'];

const payload = fc.oneof(
  { weight: 8, arbitrary: fc.jsonValue({ maxDepth: 3, stringUnit: fc.constantFrom('a', 'é', '"', '\\', '\n', '中', '\ud83d\ude00') }) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2, stringUnit: fc.constantFrom('a', '\u0000', '\ud800') }) },
  { weight: 1, arbitrary: textAround(payloadLimitBytes - 2) },
);

const message: fc.Arbitrary<OutgoingMessage> = fc.record(
  {
    topic: name(defaults.maxNameLength),
    type: name(defaults.maxNameLength),
    key: fc.oneof(fc.constant(null), name(defaults.maxKeyLength)),
    id: fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...idPool) }, { weight: 6, arbitrary: fc.uuid() }),
    payload,
    traceId: headerValue,
    correlationId: headerValue,
    headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 4 }).map((entries) => Object.fromEntries(entries)),
  },
  { requiredKeys: ['topic', 'type', 'payload'] },
);

function validName(value: unknown, limit: number): boolean {
  return typeof value === 'string' && value.trim() !== '' && value.length <= limit && storable(value) && !value.startsWith('\ufeff');
}

function storableJson(value: unknown): boolean {
  if (typeof value === 'string') return storable(value);
  if (Array.isArray(value)) return value.every(storableJson);
  if (value !== null && typeof value === 'object') return Object.entries(value).every(([key, item]) => storable(key) && storableJson(item));
  return true;
}

function namesAcceptable(topic: string, type: string, key: string | null): boolean {
  return (
    validName(topic, defaults.maxNameLength) &&
    validName(type, defaults.maxNameLength) &&
    (key === null || validName(key, defaults.maxKeyLength))
  );
}

/** The rules of the README, written out apart from the code that enforces them. */
function acceptable(candidate: OutgoingMessage): boolean {
  const json = JSON.stringify(candidate.payload);
  const headers = Object.entries(candidate.headers ?? {});
  return (
    validName(candidate.topic, defaults.maxNameLength) &&
    validName(candidate.type, defaults.maxNameLength) &&
    (candidate.key === undefined || candidate.key === null || validName(candidate.key, defaults.maxKeyLength)) &&
    (candidate.id === undefined || /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i.test(candidate.id)) &&
    json !== undefined &&
    storableJson(candidate.payload) &&
    Buffer.byteLength(json) <= payloadLimitBytes &&
    [candidate.traceId, candidate.correlationId].every(
      (value) => value === undefined || (value.length <= defaults.maxHeaderValueLength && storable(value)),
    ) &&
    headers.every(
      ([header, value]) =>
        header !== '' &&
        header.length <= defaults.maxNameLength &&
        storable(header) &&
        !reservedHeaders.includes(header) &&
        value.length <= defaults.maxHeaderValueLength &&
        storable(value),
    )
  );
}

const columns = `global_position, transaction_id::text as transaction_id, topic, message_id, type, key, payload, headers,
  stream_id, stream_position, created_at`;

describe.each(backends)('enqueue on $name under hostile input', (backend) => {
  let handle: TestPostbox;
  const accepted: { message: OutgoingMessage; id: string }[] = [];

  beforeAll(async () => {
    handle = await backend.open({ payloadLimitBytes });
  });

  afterAll(async () => {
    await handle?.cleanup();
  });

  function expectStored(stored: LogMessage, sent: OutgoingMessage, id: string): void {
    expect(stored.id).toBe(id);
    expect(stored.topic).toBe(sent.topic);
    expect(stored.type).toBe(sent.type);
    expect(stored.key).toBe(sent.key ?? null);
    expect(stored.payload).toEqual(JSON.parse(JSON.stringify(sent.payload)));
    expect(stored.headers).toEqual({
      schemaVersion: 1,
      ...(sent.traceId === undefined ? {} : { traceId: sent.traceId }),
      ...(sent.correlationId === undefined ? {} : { correlationId: sent.correlationId }),
      ...sent.headers,
    });
  }

  it('stores each message byte for byte, or refuses it with a typed code and writes nothing', async () => {
    const { postbox } = handle;
    const seenIds = new Set<string>();
    await fc.assert(
      fc.asyncProperty(message, async (candidate) => {
        const before = await postbox.db.query<{ n: number }>('select count(*)::int as n from postbox.messages');
        let ids: string[];
        try {
          ids = await postbox.publish(candidate);
        } catch (error) {
          if (!isPostboxError(error)) throw error;
          expect(validationCodes).toContain(error.code);
          expect(error.message.length).toBeGreaterThan(10);
          const duplicate = error.code === 'POSTBOX_ERR_DUPLICATE_ID';
          expect(duplicate ? seenIds.has(String(candidate.id).toLowerCase()) : !acceptable(candidate)).toBe(true);
          const after = await postbox.db.query<{ n: number }>('select count(*)::int as n from postbox.messages');
          expect(after.rows[0]?.n).toBe(before.rows[0]?.n);
          return;
        }
        expect(acceptable(candidate)).toBe(true);
        const id = ids[0] as string;
        expect(id).toBe(id.toLowerCase());
        if (candidate.id !== undefined) expect(id).toBe(candidate.id.toLowerCase());
        seenIds.add(id);
        const { rows } = await postbox.db.query<MessageRow>(`select ${columns} from postbox.messages where message_id = $1`, [id]);
        expect(rows).toHaveLength(1);
        expectStored(toLogMessage(rows[0] as MessageRow), candidate, id);
        accepted.push({ message: candidate, id });
      }),
      propertyRuns(100),
    );
    expect(accepted.length).toBeGreaterThan(0);
  });

  it('delivers every accepted message to a consumer group exactly as it was enqueued', async () => {
    const { postbox } = handle;
    expect(accepted.length).toBeGreaterThan(0);
    const received = new Map<string, LogMessage>();
    const consumer = postbox.consumer({
      group: 'hostile-reader',
      topics: [...new Set(accepted.map(({ message: sent }) => sent.topic))],
      pollIntervalMs: 50,
      handleBatch: async (messages) => {
        for (const delivered of messages) received.set(delivered.id, delivered);
      },
    });
    await consumer.start();
    try {
      await waitFor(() => received.size === accepted.length, 30_000, `${accepted.length} deliveries`);
    } finally {
      await consumer.stop(5_000);
    }
    for (const { message: sent, id } of accepted) expectStored(received.get(id) as LogMessage, sent, id);
  });
  it('publishes from SQL with any text: stored byte for byte when the TypeScript rules accept it, or refused with its reason', async () => {
    const { postbox } = handle;
    // Drivers encode a lone surrogate as U+FFFD, so the SQL path is tried with well-formed strings (NUL included).
    const text = hostileText.filter((value) => value.isWellFormed());
    let stored = 0;
    await fc.assert(
      fc.asyncProperty(text, text, fc.option(text, { nil: null }), payload, async (topic, type, key, body) => {
        const json = JSON.stringify(body);
        let id: string;
        try {
          const { rows } = await postbox.db.query<{ id: string }>('select postbox.publish($1, $2, $3::jsonb, $4)::text as id', [
            topic,
            type,
            json,
            key,
          ]);
          id = rows[0]?.id as string;
        } catch (error) {
          const { code, message: text } = error as { code?: string; message: string };
          // 22023: the function's own POSTBOX_ERR_* checks; 22021: NUL in text; 22P05: \u0000 in jsonb;
          // 22P02: a lone surrogate escaped in jsonb.
          expect(['22023', '22021', '22P05', '22P02']).toContain(code);
          if (code === '22023') {
            expect(text).toMatch(/^POSTBOX_ERR_[A-Z_]+: /);
            expect(namesAcceptable(topic, type, key)).toBe(false);
          } else if (code === '22P02') expect(json).toMatch(/\\ud[89a-f]/);
          else expect([topic, type, key ?? '', json].some((value) => value.includes('\u0000') || value.includes('\\u0000'))).toBe(true);
          return;
        }
        const { rows } = await postbox.db.query<{ same: boolean }>(
          `select topic = $2 and type = $3 and key is not distinct from $4 and payload = $5::jsonb as same
           from postbox.messages where message_id = $1::uuid`,
          [id, topic, type, key, json],
        );
        expect(rows).toEqual([{ same: true }]);
        expect(namesAcceptable(topic, type, key)).toBe(true);
        stored++;
      }),
      propertyRuns(60),
    );
    expect(stored).toBeGreaterThan(0);
  });
});
