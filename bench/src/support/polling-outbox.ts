import type { Producer } from 'kafkajs';
import type pg from 'pg';
import { chunks, orderMessage } from './messages.js';
import { sleep } from './timing.js';

/**
 * A polling outbox, as hand-rolled outboxes are written: a table with a `published` flag and an
 * index on (published, created_at), and a poller that selects the oldest unpublished rows, produces
 * them, then marks each one published with an UPDATE of its own.
 */
export async function createPollingOutbox(client: pg.Client): Promise<void> {
  await client.query(`
    create table polling_outbox (
      id uuid primary key default gen_random_uuid(),
      event_type text not null,
      topic text not null,
      partition_key text,
      event_payload jsonb not null,
      published boolean not null default false,
      published_at timestamptz,
      created_at timestamptz not null default clock_timestamp()
    )`);
  await client.query('create index polling_outbox_published_created on polling_outbox (published, created_at)');
}

export async function loadPollingOutbox(client: pg.Client, topic: string, count: number): Promise<void> {
  for (const batch of chunks(count, 1_000, orderMessage)) {
    await client.query(
      `insert into polling_outbox (event_type, topic, partition_key, event_payload)
       select 'order.created', $1, key, payload from unnest($2::text[], $3::jsonb[]) as rows(key, payload)`,
      [topic, batch.map((m) => m.key), batch.map((m) => JSON.stringify(m.payload))],
    );
  }
}

interface OutboxRow {
  id: string;
  event_type: string;
  topic: string;
  partition_key: string | null;
  event_payload: unknown;
}

/**
 * One poll: up to batchSize unpublished rows, oldest first, produced in one sendBatch (a polling
 * outbox usually sends them one by one; one call is kinder to it), then one UPDATE per row.
 * Returns how many it published.
 */
export async function pollOutbox(client: pg.Client, producer: Producer, batchSize: number): Promise<number> {
  const { rows } = await client.query<OutboxRow>(
    'select id, event_type, topic, partition_key, event_payload from polling_outbox where not published order by created_at limit $1',
    [batchSize],
  );
  if (rows.length === 0) return 0;
  const byTopic = new Map<string, { key: string | null; value: string; headers: Record<string, string> }[]>();
  for (const row of rows) {
    const list = byTopic.get(row.topic) ?? [];
    list.push({
      key: row.partition_key,
      value: JSON.stringify(row.event_payload),
      headers: { 'message-id': row.id, 'message-type': row.event_type },
    });
    byTopic.set(row.topic, list);
  }
  await producer.sendBatch({ topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })), acks: -1 });
  for (const row of rows) {
    await client.query('update polling_outbox set published = true, published_at = now() where id = $1', [row.id]);
  }
  return rows.length;
}

/** Polls every intervalMs (the first poll after one interval, as a ticker does) for `polls` polls. */
export async function runOutboxTicker(
  client: pg.Client,
  producer: Producer,
  batchSize: number,
  intervalMs: number,
  polls: number,
): Promise<number> {
  let published = 0;
  for (let poll = 0; poll < polls; poll++) {
    await sleep(intervalMs);
    published += await pollOutbox(client, producer, batchSize);
  }
  return published;
}

/** Polls back to back, with no interval, until `count` rows are published. */
export async function drainPollingOutbox(client: pg.Client, producer: Producer, batchSize: number, count: number): Promise<void> {
  for (let published = 0; published < count; ) published += await pollOutbox(client, producer, batchSize);
}
