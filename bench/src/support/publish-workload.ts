import type { OutgoingMessage, Postbox } from 'postbox';
import { chunks, orderMessage, uuidv7 } from './messages.js';
import type { Session } from './session.js';

/**
 * The raw baselines' tables: `bench_raw` has the columns, types and defaults of postbox.messages
 * and only its primary key; `bench_raw_indexed` is a copy of postbox.messages with all its indexes.
 */
export async function createRawTables(session: Session): Promise<void> {
  await session.query(`
    create table bench_raw (
      global_position bigint generated always as identity primary key,
      transaction_id xid8 not null default pg_current_xact_id(),
      topic text not null,
      message_id uuid not null,
      type text not null,
      key text,
      payload jsonb not null,
      headers jsonb not null default '{}'::jsonb,
      stream_id text,
      stream_position bigint,
      created_at timestamptz not null default now()
    )`);
  await session.query('create table bench_raw_indexed (like postbox.messages including all)');
}

const insertSql = new Map<string, string>();

/** insert into table (...) values (...), (...): six parameters a row. */
function multiRowInsert(table: string, rows: number): string {
  const cacheKey = `${table}:${rows}`;
  let sql = insertSql.get(cacheKey);
  if (!sql) {
    const values = Array.from({ length: rows }, (_, r) => `(${Array.from({ length: 6 }, (_, c) => `$${r * 6 + c + 1}`).join(', ')})`);
    sql = `insert into ${table} (message_id, topic, type, key, payload, headers) values ${values.join(', ')}`;
    insertSql.set(cacheKey, sql);
  }
  return sql;
}

function rawParams(messages: readonly OutgoingMessage[]): unknown[] {
  const params: unknown[] = [];
  for (const m of messages) {
    params.push(uuidv7(), m.topic, m.type, m.key, JSON.stringify(m.payload), JSON.stringify({ schemaVersion: 1 }));
  }
  return params;
}

async function inTransaction(session: Session, fn: () => Promise<unknown>): Promise<void> {
  await session.query('begin');
  await fn();
  await session.query('commit');
}

export interface PublishTimes {
  raw: number;
  rawIndexed: number;
  postbox: number;
}

/**
 * Publishes `total` messages, `perTransaction` in each transaction, three ways. The contenders take
 * turns transaction by transaction, so that the machine's noise falls on all three alike.
 */
export async function publishRace(session: Session, postbox: Postbox, total: number, perTransaction: number): Promise<PublishTimes> {
  const times: PublishTimes = { raw: 0, rawIndexed: 0, postbox: 0 };
  const contenders: [keyof PublishTimes, (batch: OutgoingMessage[]) => Promise<unknown>][] = [
    ['raw', (batch) => session.query(multiRowInsert('bench_raw', batch.length), rawParams(batch))],
    ['rawIndexed', (batch) => session.query(multiRowInsert('bench_raw_indexed', batch.length), rawParams(batch))],
    ['postbox', (batch) => postbox.enqueue(session.driver, batch)],
  ];
  const batches = chunks(total, perTransaction, orderMessage);
  for (const [round, batch] of batches.entries()) {
    for (let turn = 0; turn < contenders.length; turn++) {
      const [name, write] = contenders[(round + turn) % contenders.length] as (typeof contenders)[number];
      const start = performance.now();
      await inTransaction(session, () => write(batch));
      times[name] += performance.now() - start;
    }
  }
  return times;
}
