import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { createLogger } from 'postbox';
import { createTestDatabase } from '../../../../packages/postbox/test/support/postgres.js';
import { type Env, loadConfig } from '../../src/config.js';
import { decodeHistoryEvent } from '../../src/history/history-event.js';
import { type HistoryRow, toHistoryRow } from '../../src/history/history-row.js';
import { type System, type SystemOptions, startSystem } from '../../src/system.js';

export { delay, waitFor } from '../../../../packages/postbox/test/support/wait.js';

export type BackendName = 'pglite' | 'postgres';
export const backendNames: BackendName[] = ['pglite', 'postgres'];

export interface TestSystem extends System {
  backend: BackendName;
  url: string | undefined;
  /** Closes the system and drops its database. */
  cleanup(): Promise<void>;
}

/** The whole system on a database of its own: in-memory PGlite, or a fresh PostgreSQL database. */
export async function openSystem(backend: BackendName, env: Env = {}, options: SystemOptions = {}): Promise<TestSystem> {
  const database = backend === 'postgres' ? await createTestDatabase() : undefined;
  const config = loadConfig({
    OUTBOX_INTERVAL: '100ms',
    OUTBOX_RETRY_DELAY: '20ms',
    ...env,
    ...(database ? { DATABASE_URL: database.url } : { POSTBOX_DATA_DIR: 'memory' }),
  });
  const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', name: 'todo-history-test' });
  try {
    const system = await startSystem(config, { logger, ...options });
    return {
      ...system,
      backend,
      url: database?.url,
      async cleanup() {
        await system.close();
        await database?.drop();
      },
    };
  } catch (error) {
    await database?.drop();
    throw error;
  }
}

export interface Answer<T = any> {
  status: number;
  body: T;
  response: LightMyRequestResponse;
}

/** One HTTP call through Fastify's inject: JSON in, JSON out. */
export async function call<T = any>(
  system: Pick<System, 'app'>,
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer<T>> {
  const response = await system.app.inject({
    method,
    url,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    payload: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = response.body;
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: the text itself
  }
  return { status: response.statusCode, body: parsed as T, response };
}

/** Rows of todo_event_logs, oldest first, with the columns named as in the table. */
export async function historyRows(system: Pick<System, 'postbox'>, where = 'true', params: unknown[] = []) {
  const { rows } = await system.postbox.db.query<Record<string, any>>(
    `select id::int as id, "timestamp", event_type, entity, entity_id, group_id, group_name, task_id, task_name, changes, user_name,
            workspace, event_data, message_id, source_topic, source_partition, source_offset::text as source_offset, timestamp_fallback
     from todo_event_logs where ${where} order by id`,
    params,
  );
  return rows;
}

export async function countRows(system: Pick<System, 'postbox'>, table = 'todo_event_logs'): Promise<number> {
  const { rows } = await system.postbox.db.query<{ n: number }>(`select count(*)::int as n from ${table}`);
  return Number(rows[0]?.n ?? 0);
}

/** Publishes a history event straight to the topic with SQL, as any producer could. */
export async function publishRaw(system: Pick<System, 'postbox' | 'config'>, payload: unknown, key = 'k'): Promise<string> {
  const { rows } = await system.postbox.db.query<{ id: string }>(`select postbox.publish($1, 'todo.external', $2::jsonb, $3)::text as id`, [
    system.config.history.topic,
    JSON.stringify(payload),
    key,
  ]);
  return rows[0]?.id as string;
}

/** A valid event in the todo-history event format: a task's status change, like the example of the README. */
export function sampleEvent(overrides: { eventType?: string; timestamp?: unknown; payload?: Record<string, unknown> } = {}) {
  const timestamp = '2025-11-10T11:30:00.000Z';
  return {
    eventType: overrides.eventType ?? 'status_changed',
    timestamp: 'timestamp' in overrides ? overrides.timestamp : timestamp,
    payload: {
      entity: 'Task',
      entityId: 'task-uuid-5',
      groupId: 'group-uuid-1',
      groupName: 'Project Alpha',
      taskId: 'task-uuid-5',
      taskName: 'Fix bug #42',
      changes: 'Status changed from pending to in-progress',
      user: 'bob',
      workspace: 'default',
      timestamp,
      ...overrides.payload,
    },
  };
}

/** One todo_event_logs row, as the history consumer makes it of a message carrying `event` under `key`. */
export function historyRowOf(event: unknown, key = 'g'): HistoryRow {
  const message = {
    id: randomUUID(),
    topic: 'todo-history-events',
    type: 'todo.external',
    key,
    payload: event,
    headers: {},
    createdAt: new Date(),
    source: { kind: 'log' as const, transactionId: 1n, globalPosition: 1n },
  };
  return toHistoryRow({ ...message, payload: decodeHistoryEvent(message, 65_536) });
}

/** A promise with its resolve at hand: lets a test hold a transaction open until it says so. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}
