import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { historyRows, openSystem, publishRaw, sampleEvent, type TestSystem, waitFor } from './support/system.js';

const event = sampleEvent();
const withPayload = (payload: Record<string, unknown>) => ({ ...event, payload: { ...event.payload, ...payload } });
const without = (object: Record<string, unknown>, key: string) =>
  Object.fromEntries(Object.entries(object).filter(([name]) => name !== key));

/** Messages a producer could write to the topic that are not in the todo-history event format, and why each is refused. */
const badCases: { name: string; payload: unknown; reason: RegExp }[] = [
  { name: 'malformed JSON text', payload: '{"eventType": "created", "payload": {', reason: /not valid JSON/ },
  { name: 'a number', payload: 42, reason: /must be a JSON object \(got a number\)/ },
  { name: 'an array', payload: [event], reason: /must be a JSON object \(got an array\)/ },
  { name: 'JSON null', payload: null, reason: /must be a JSON object \(got null\)/ },
  { name: 'JSON text of a string', payload: '"hello"', reason: /must be a JSON object \(got a string\)/ },
  { name: 'no eventType', payload: without(event, 'eventType'), reason: /eventType is missing/ },
  { name: 'no payload', payload: without(event, 'payload'), reason: /payload is missing/ },
  { name: 'no entity', payload: { ...event, payload: without(event.payload, 'entity') }, reason: /payload\.entity is missing/ },
  { name: 'no entityId', payload: { ...event, payload: without(event.payload, 'entityId') }, reason: /payload\.entityId is missing/ },
  { name: 'unknown entity', payload: withPayload({ entity: 'Project' }), reason: /payload\.entity must be one of Group, Task/ },
  { name: 'entity in the wrong case', payload: withPayload({ entity: 'task' }), reason: /payload\.entity must be one of/ },
  { name: 'unknown eventType', payload: { ...event, eventType: 'archived' }, reason: /eventType must be one of created, updated/ },
  { name: 'entityId a number', payload: withPayload({ entityId: 123 }), reason: /payload\.entityId must be a string \(got a number\)/ },
  { name: 'payload a string', payload: { ...event, payload: 'Task created' }, reason: /payload must be an object \(got a string\)/ },
  { name: 'user an object', payload: withPayload({ user: { name: 'bob' } }), reason: /payload\.user must be a string/ },
  { name: 'empty entityId', payload: withPayload({ entityId: '' }), reason: /payload\.entityId must not be empty/ },
  { name: 'entityId too long', payload: withPayload({ entityId: 'x'.repeat(101) }), reason: /payload\.entityId must be at most 100/ },
  { name: 'groupName too long', payload: withPayload({ groupName: 'g'.repeat(256) }), reason: /payload\.groupName must be at most 255/ },
  { name: 'oversized', payload: withPayload({ changes: 'c'.repeat(70_000) }), reason: /event is \d+ bytes, over the limit of 65536/ },
  { name: 'oversized JSON text', payload: JSON.stringify(withPayload({ changes: 'c'.repeat(70_000) })), reason: /over the limit/ },
];

/** Good messages: each is stored, with what the row should say. */
const goodCases: { name: string; payload: unknown; expect: Record<string, unknown>; fallback?: boolean }[] = [
  { name: 'the sample event', payload: event, expect: { task_id: 'task-uuid-5', group_id: 'group-uuid-1', user_name: 'bob' } },
  {
    name: 'JSON text of an event',
    payload: JSON.stringify(withPayload({ entityId: 'twice' })),
    expect: { entity_id: 'twice', task_id: 'twice' },
  },
  { name: 'timestamp unparsable', payload: { ...withPayload({ timestamp: 'later' }), timestamp: 'yesterday' }, expect: {}, fallback: true },
  {
    name: 'timestamp missing',
    payload: { ...without(event, 'timestamp'), payload: without(event.payload, 'timestamp') },
    expect: {},
    fallback: true,
  },
  { name: 'timestamp a number', payload: { ...withPayload({ timestamp: 1 }), timestamp: 1_731_000_000_000 }, expect: {}, fallback: true },
  {
    name: 'timestamp not a day',
    payload: { ...withPayload({ timestamp: null }), timestamp: '2025-02-30T10:00:00Z' },
    expect: {},
    fallback: true,
  },
  {
    name: 'timestamp with an offset and microseconds',
    payload: { ...event, timestamp: '2025-11-10T13:30:00.123456+02:00' },
    expect: { exact: '2025-11-10 11:30:00.123456+00' },
  },
  {
    name: 'only the payload has a timestamp',
    payload: { ...without(event, 'timestamp'), payload: { ...event.payload, timestamp: '2025-11-09T08:00:00Z' } },
    expect: { exact: '2025-11-09 08:00:00+00' },
  },
  {
    name: 'a Group event without groupId',
    payload: { ...event, eventType: 'created', payload: { entity: 'Group', entityId: 'group-7', groupName: 'Seven', user: 'ann' } },
    expect: { entity: 'Group', group_id: 'group-7', task_id: null, group_name: 'Seven', workspace: null, changes: null },
  },
  { name: 'empty optional fields', payload: withPayload({ groupId: '', groupName: '' }), expect: { group_id: null, group_name: null } },
  { name: 'extra fields', payload: { ...event, source: 'go-service', payload: { ...event.payload, priority: 3 } }, expect: {} },
];

describe('bad messages on the topic', () => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await openSystem('postgres');
  });

  afterAll(async () => {
    await system?.cleanup();
  });

  it('dead-letters every bad message with its reason and stores every good one around them', async () => {
    expect(badCases.length).toBeGreaterThanOrEqual(15);
    const bad = new Map<string, (typeof badCases)[number]>();
    const good = new Map<string, (typeof goodCases)[number]>();
    for (let i = 0; i < Math.max(badCases.length, goodCases.length); i++) {
      const goodCase = goodCases[i];
      if (goodCase) good.set(await publishRaw(system, goodCase.payload), goodCase);
      const badCase = badCases[i];
      if (badCase) bad.set(await publishRaw(system, badCase.payload), badCase);
    }
    await waitFor(
      async () => (await system.postbox.groupStatus(system.config.history.group))[0]?.lagMessages === 0,
      15_000,
      'the topic to be read',
    );

    const letters = await system.postbox.deadLetters.list({ limit: 1_000 });
    expect(letters.map((letter) => letter.messageId).sort()).toEqual([...bad.keys()].sort());
    for (const letter of letters) {
      const badCase = bad.get(letter.messageId);
      expect(letter.errorCode, badCase?.name).toBe('POSTBOX_ERR_DECODE');
      expect(letter.errorMessage, badCase?.name).toMatch(badCase?.reason as RegExp);
      expect(letter.group).toBe('todo-consumer-group-go');
      expect(letter.status).toBe('pending');
    }

    const rows = await historyRows(system);
    expect(rows.map((row) => row.message_id).sort()).toEqual([...good.keys()].sort());
    const { rows: created } = await system.postbox.db.query<{ id: string; created_at: Date }>(
      `select message_id::text as id, created_at from postbox.messages`,
    );
    const createdAt = new Map(created.map((row) => [row.id, new Date(row.created_at).getTime()]));
    for (const row of rows) {
      const goodCase = good.get(row.message_id) as (typeof goodCases)[number];
      expect(row.timestamp_fallback, goodCase.name).toBe(goodCase.fallback === true);
      if (goodCase.fallback) expect(new Date(row.timestamp).getTime(), goodCase.name).toBe(createdAt.get(row.message_id));
      const { exact, ...columns } = goodCase.expect;
      expect(row, goodCase.name).toMatchObject(columns);
      if (exact) {
        const { rows: text } = await system.postbox.db.query<{ t: string }>(
          `select "timestamp"::text as t from todo_event_logs where message_id = $1`,
          [row.message_id],
        );
        expect(text[0]?.t.replace(/\+00(:00)?$/, '+00'), goodCase.name).toBe(exact);
      }
    }
    const extra = rows.find((row) => good.get(row.message_id)?.name === 'extra fields');
    expect(extra?.event_data).toMatchObject({ source: 'go-service', payload: { priority: 3 } });
  });
});
