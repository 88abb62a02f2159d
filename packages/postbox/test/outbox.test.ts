import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../src/errors/postbox-error.js';
import { messageBuilder } from '../src/outbox/message-builder.js';
import type { Postbox } from '../src/postbox.js';
import { backends, type TestPostbox } from './support/backends.js';

async function countMessages(postbox: Postbox): Promise<number> {
  const { rows } = await postbox.db.query<{ n: number }>('select count(*)::int as n from postbox.messages');
  return Number(rows[0]?.n);
}

describe.each(backends)('outbox on $name', (backend) => {
  let env: TestPostbox;
  let postbox: Postbox;

  beforeAll(async () => {
    env = await backend.open();
    postbox = env.postbox;
    await postbox.db.query('create table orders (id text primary key, amount int not null)');
  });
  afterAll(() => env.cleanup());

  it('leaves no message when the business transaction rolls back, and exactly one when it commits', async () => {
    const before = await countMessages(postbox);
    await expect(
      postbox.transaction(async (tx) => {
        await tx.query('insert into orders values ($1, $2)', ['o-1', 10]);
        await postbox.enqueue(tx, { topic: 'orders', type: 'order.created', payload: { id: 'o-1' }, key: 'o-1' });
        throw new Error('business rule failed');
      }),
    ).rejects.toThrow('business rule failed');
    expect(await countMessages(postbox)).toBe(before);
    const { rows: noOrder } = await postbox.db.query('select * from orders where id = $1', ['o-1']);
    expect(noOrder).toHaveLength(0);

    const [id] = await postbox.transaction(async (tx) => {
      await tx.query('insert into orders values ($1, $2)', ['o-1', 10]);
      return postbox.enqueue(tx, { topic: 'orders', type: 'order.created', payload: { id: 'o-1' }, key: 'o-1' });
    });
    expect(await countMessages(postbox)).toBe(before + 1);
    const { rows } = await postbox.db.query<{ message_id: string; key: string; payload: unknown }>(
      'select message_id, key, payload from postbox.messages where message_id = $1',
      [id],
    );
    expect(rows).toEqual([{ message_id: id, key: 'o-1', payload: { id: 'o-1' } }]);
  });

  it("enqueues on the driver's own transaction object", async () => {
    const before = await countMessages(postbox);
    if (backend.name === 'postgres') {
      const client = new pg.Client({ connectionString: env.url });
      await client.connect();
      try {
        await client.query('begin');
        await postbox.enqueue(client, { topic: 'raw', type: 't', payload: 1 });
        await client.query('rollback');
        expect(await countMessages(postbox)).toBe(before);
        await client.query('begin');
        await postbox.enqueue(client, [
          { topic: 'raw', type: 't', payload: 1 },
          { topic: 'raw', type: 't', payload: 2 },
        ]);
        await client.query('commit');
      } finally {
        await client.end();
      }
    } else {
      const pglite = (postbox.db as unknown as { pglite: import('@electric-sql/pglite').PGlite }).pglite;
      await expect(
        pglite.transaction(async (tx) => {
          await postbox.enqueue(tx, { topic: 'raw', type: 't', payload: 1 });
          throw new Error('rollback');
        }),
      ).rejects.toThrow('rollback');
      expect(await countMessages(postbox)).toBe(before);
      await pglite.transaction(async (tx) => {
        await postbox.enqueue(tx, [
          { topic: 'raw', type: 't', payload: 1 },
          { topic: 'raw', type: 't', payload: 2 },
        ]);
      });
    }
    expect(await countMessages(postbox)).toBe(before + 2);
  });

  it('stores headers from typed options and the builder, with a UUIDv7 id', async () => {
    const message = messageBuilder('order.shipped', 'order-9')
      .topic('orders')
      .userId('user-1')
      .traceId('trace-1')
      .correlationId('corr-1')
      .causationId('cause-1')
      .version(2)
      .header('tenant', 'acme')
      .payload({ carrier: 'ups' })
      .build();
    const [id] = await postbox.publish(message);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const { rows } = await postbox.db.query<{ headers: unknown; key: string; type: string }>(
      'select headers, key, type from postbox.messages where message_id = $1',
      [id],
    );
    expect(rows[0]).toEqual({
      key: 'order-9',
      type: 'order.shipped',
      headers: { schemaVersion: 2, traceId: 'trace-1', correlationId: 'corr-1', causationId: 'cause-1', userId: 'user-1', tenant: 'acme' },
    });
  });

  it('publishes from SQL with postbox.publish(), inside any transaction', async () => {
    const before = await countMessages(postbox);
    await expect(
      postbox.transaction(async (tx) => {
        await tx.query(`select postbox.publish('sql-topic', 'sql.type', '{"a":1}'::jsonb, 'k1')`);
        throw new Error('rollback');
      }),
    ).rejects.toThrow();
    expect(await countMessages(postbox)).toBe(before);
    const { rows } = await postbox.db.query<{ id: string }>(
      `select postbox.publish('sql-topic', 'sql.type', '{"a":1}'::jsonb, 'k1', '{"traceId":"t-9"}'::jsonb) as id`,
    );
    const id = rows[0]?.id as string;
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    const stored = await postbox.db.query('select topic, type, key, payload, headers from postbox.messages where message_id = $1', [id]);
    expect(stored.rows).toEqual([
      { topic: 'sql-topic', type: 'sql.type', key: 'k1', payload: { a: 1 }, headers: { traceId: 't-9', schemaVersion: 1 } },
    ]);
    await expect(postbox.db.query(`select postbox.publish('', 'x', '{}'::jsonb)`)).rejects.toThrow(/POSTBOX_ERR_EMPTY_TOPIC/);
    await expect(postbox.db.query(`select postbox.publish('t', '', '{}'::jsonb)`)).rejects.toThrow(/POSTBOX_ERR_EMPTY_TYPE/);
    await expect(postbox.db.query(`select postbox.publish('t', 'x', '{}'::jsonb, null, '[]'::jsonb)`)).rejects.toThrow(
      /POSTBOX_ERR_BAD_HEADER/,
    );
  });

  it('refuses from SQL the names and headers the TypeScript API refuses, with the same codes', async () => {
    const codeOf = (error: unknown) => /POSTBOX_ERR_[A-Z_]+/.exec(String((error as Error).message))?.[0];
    const viaSql = (topic: string, type: string, key: string | null, headers: unknown = {}) =>
      postbox.db
        .query('select postbox.publish($1, $2, $3::jsonb, $4, $5::jsonb) as id', [topic, type, '{}', key, JSON.stringify(headers)])
        .then(
          () => 'stored',
          (error: unknown) => codeOf(error),
        );
    const viaApi = (topic: string, type: string, key: string | null) =>
      postbox.publish({ topic, type, key, payload: {} }).then(
        () => 'stored',
        (error: unknown) => (error as { code?: string }).code,
      );
    const emoji = '\u{1F600}';
    const names: [string, string, string | null, string][] = [
      ['   ', 't', null, 'POSTBOX_ERR_EMPTY_TOPIC'],
      ['\u3000\u00a0\t', 't', null, 'POSTBOX_ERR_EMPTY_TOPIC'],
      ['t', '\n', null, 'POSTBOX_ERR_EMPTY_TYPE'],
      ['x'.repeat(201), 't', null, 'POSTBOX_ERR_BAD_NAME'],
      [emoji.repeat(101), 't', null, 'POSTBOX_ERR_BAD_NAME'],
      ['\ufeffx', 't', null, 'POSTBOX_ERR_BAD_NAME'],
      ['t', 'y'.repeat(201), null, 'POSTBOX_ERR_BAD_NAME'],
      ['t', 't', ' ', 'POSTBOX_ERR_BAD_NAME'],
      ['t', 't', 'k'.repeat(1_001), 'POSTBOX_ERR_BAD_NAME'],
      ['x'.repeat(200), 'y'.repeat(200), 'k'.repeat(1_000), 'stored'],
      [emoji.repeat(100), 't', emoji, 'stored'],
    ];
    for (const [topic, type, key, expected] of names) {
      expect([topic.slice(0, 8), await viaSql(topic, type, key)]).toEqual([topic.slice(0, 8), expected]);
      expect([topic.slice(0, 8), await viaApi(topic, type, key)]).toEqual([topic.slice(0, 8), expected]);
    }
    // Characters some definitions of white space include and JavaScript's trim() does not, and the reverse.
    for (const unit of ['\u0085', '\u180e', '\u200b', '\u001c', '\u001f', '\u000b', '\u2007', '\u3000', '\ufeff']) {
      const topic = `${unit}${unit}`;
      const label = unit.codePointAt(0)?.toString(16);
      expect([label, await viaSql(topic, 't', null)]).toEqual([label, await viaApi(topic, 't', null)]);
    }
    const manyHeaders = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`h${i}`, 'v']));
    const badHeaders: unknown[] = [
      { traceId: 5 },
      { note: 'v'.repeat(4_001) },
      manyHeaders,
      { ['__proto__']: 'x' },
      { '': 'x' },
      { ['n'.repeat(201)]: 'x' },
      { schemaVersion: 0 },
      { schemaVersion: 1.5 },
      { schemaVersion: '2' },
      { schemaVersion: 2 ** 53 },
      [],
    ];
    for (const headers of badHeaders) {
      const json = JSON.stringify(headers) ?? '';
      expect([json.slice(0, 40), await viaSql('t', 't', null, headers)]).toEqual([json.slice(0, 40), 'POSTBOX_ERR_BAD_HEADER']);
    }
    const stored = async (headers: unknown) => {
      const { rows: published } = await postbox.db.query<{ id: string }>(
        'select postbox.publish($1, $2, $3::jsonb, null, $4::jsonb) as id',
        ['sql-headers', 't', '{}', JSON.stringify(headers)],
      );
      const { rows } = await postbox.db.query<{ headers: Record<string, unknown> }>(
        'select headers from postbox.messages where message_id = $1',
        [published[0]?.id],
      );
      return rows[0]?.headers;
    };
    expect(await stored({})).toEqual({ schemaVersion: 1 });
    expect(await stored({ traceId: 't-1', note: 'v'.repeat(4_000), schemaVersion: 3 })).toEqual({
      traceId: 't-1',
      note: 'v'.repeat(4_000),
      schemaVersion: 3,
    });
    const { h64: _dropped, ...sixtyFour } = manyHeaders;
    expect(await stored({ ...sixtyFour, traceId: 't', userId: 'u' })).toMatchObject({ h0: 'v', h63: 'v', schemaVersion: 1 });
  });

  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const invalid: [string, unknown, string][] = [
    ['empty topic', { topic: '', type: 't', payload: {} }, 'POSTBOX_ERR_EMPTY_TOPIC'],
    ['blank topic', { topic: '   ', type: 't', payload: {} }, 'POSTBOX_ERR_EMPTY_TOPIC'],
    ['missing topic', { type: 't', payload: {} }, 'POSTBOX_ERR_EMPTY_TOPIC'],
    ['empty type', { topic: 't', type: '', payload: {} }, 'POSTBOX_ERR_EMPTY_TYPE'],
    ['topic with NUL', { topic: 'a\u0000b', type: 't', payload: {} }, 'POSTBOX_ERR_BAD_NAME'],
    ['overlong topic', { topic: 'x'.repeat(201), type: 't', payload: {} }, 'POSTBOX_ERR_BAD_NAME'],
    ['empty key', { topic: 't', type: 't', key: '', payload: {} }, 'POSTBOX_ERR_BAD_NAME'],
    ['key with lone surrogate', { topic: 't', type: 't', key: '\ud800', payload: {} }, 'POSTBOX_ERR_BAD_NAME'],
    ['cyclic payload', { topic: 't', type: 't', payload: cyclic }, 'POSTBOX_ERR_PAYLOAD_NOT_JSON'],
    ['bigint payload', { topic: 't', type: 't', payload: { n: 1n } }, 'POSTBOX_ERR_PAYLOAD_NOT_JSON'],
    ['undefined payload', { topic: 't', type: 't', payload: undefined }, 'POSTBOX_ERR_PAYLOAD_NOT_JSON'],
    ['function payload', { topic: 't', type: 't', payload: () => 1 }, 'POSTBOX_ERR_PAYLOAD_NOT_JSON'],
    ['payload with NUL', { topic: 't', type: 't', payload: { s: 'a\u0000' } }, 'POSTBOX_ERR_PAYLOAD_NOT_JSON'],
    ['payload key with NUL', { topic: 't', type: 't', payload: { 'a\u0000': 1 } }, 'POSTBOX_ERR_PAYLOAD_NOT_JSON'],
    ['payload with lone surrogate', { topic: 't', type: 't', payload: ['\udc00'] }, 'POSTBOX_ERR_PAYLOAD_NOT_JSON'],
    ['oversized payload', { topic: 't', type: 't', payload: 'x'.repeat(1_048_577) }, 'POSTBOX_ERR_PAYLOAD_TOO_LARGE'],
    ['non-string header', { topic: 't', type: 't', payload: {}, headers: { n: 1 } }, 'POSTBOX_ERR_BAD_HEADER'],
    ['empty header name', { topic: 't', type: 't', payload: {}, headers: { '': 'v' } }, 'POSTBOX_ERR_BAD_HEADER'],
    ['reserved header', { topic: 't', type: 't', payload: {}, headers: { traceId: 'v' } }, 'POSTBOX_ERR_BAD_HEADER'],
    ['header with NUL', { topic: 't', type: 't', payload: {}, headers: { h: '\u0000' } }, 'POSTBOX_ERR_BAD_HEADER'],
    ['bad schema version', { topic: 't', type: 't', payload: {}, schemaVersion: 0 }, 'POSTBOX_ERR_BAD_HEADER'],
    ['non-string trace id', { topic: 't', type: 't', payload: {}, traceId: 5 }, 'POSTBOX_ERR_BAD_HEADER'],
    ['bad id', { topic: 't', type: 't', payload: {}, id: 'not-a-uuid' }, 'POSTBOX_ERR_BAD_OPTION'],
  ];

  it.each(invalid)('rejects %s with its code and writes nothing', async (_name, message, code) => {
    const before = await countMessages(postbox);
    const attempt = postbox.transaction(async (tx) => {
      // A valid message first: the whole call must be refused, not half of it.
      await postbox.enqueue(tx, [{ topic: 'ok', type: 'ok', payload: {} }, message as never]);
    });
    const error = await attempt.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe(code);
    expect((error as ValidationError).retriable).toBe(false);
    expect((error as ValidationError).message.length).toBeGreaterThan(15);
    expect(await countMessages(postbox)).toBe(before);
  });

  it('accepts control characters, unicode and SQL metacharacters byte for byte', async () => {
    const payload = { text: "'; drop table orders; -- \u0001\t\n😀 \\u0000 literal", nested: [{ ключ: 'значение' }] };
    const [id] = await postbox.publish({ topic: "it's a topic", type: 'weird"type', key: 'k\\ey', payload });
    const { rows } = await postbox.db.query<{ payload: unknown; topic: string; type: string; key: string }>(
      'select payload, topic, type, key from postbox.messages where message_id = $1',
      [id],
    );
    expect(rows[0]).toEqual({ payload, topic: "it's a topic", type: 'weird"type', key: 'k\\ey' });
  });

  it('honours a configured payload limit', async () => {
    const small = await backend.open({ payloadLimitBytes: 100 });
    try {
      await expect(small.postbox.publish({ topic: 't', type: 't', payload: 'y'.repeat(100) })).rejects.toMatchObject({
        code: 'POSTBOX_ERR_PAYLOAD_TOO_LARGE',
      });
      await expect(small.postbox.publish({ topic: 't', type: 't', payload: 'y'.repeat(90) })).resolves.toHaveLength(1);
      // Multi-byte characters count as the bytes they take.
      await expect(small.postbox.publish({ topic: 't', type: 't', payload: 'é'.repeat(60) })).rejects.toMatchObject({
        code: 'POSTBOX_ERR_PAYLOAD_TOO_LARGE',
      });
    } finally {
      await small.cleanup();
    }
  });
});
