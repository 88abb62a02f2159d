import { createKafka } from 'postbox/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockCluster, startMockCluster } from '../../../packages/postbox/test/support/kafka-mock.js';
import { call, countRows, historyRows, openSystem, type TestSystem, waitFor } from './support/system.js';

// With KAFKA_BROKERS the relay forwards the outbox topic to Kafka and the history consumer reads Kafka.
describe('history through Kafka (mock cluster)', () => {
  let cluster: MockCluster;
  let system: TestSystem;

  beforeAll(async () => {
    cluster = await startMockCluster();
    await cluster.createTopic('todo-history-events', 4);
    system = await openSystem('postgres', {
      KAFKA_BROKERS: cluster.bootstrap,
      // The mock cluster refuses KafkaJS's idempotent producer; real clusters keep it on.
      KAFKA_IDEMPOTENT: 'false',
    });
  }, 60_000);

  afterAll(async () => {
    await system?.cleanup();
    await cluster?.stop();
  });

  it('stores todo-history events written by a plain KafkaJS producer, not through the outbox', async () => {
    const producer = createKafka({ brokers: cluster.brokers }).producer();
    await producer.connect();
    const event = {
      eventType: 'created',
      timestamp: '2026-11-20T10:00:00.000Z',
      payload: {
        entity: 'Task',
        entityId: 'external-task-1',
        groupId: 'external-group',
        groupName: 'From another service',
        taskId: 'external-task-1',
        taskName: 'Written straight to Kafka',
        changes: 'Task created',
        user: 'go-service',
        workspace: 'default',
        timestamp: '2026-11-20T10:00:00.000Z',
      },
    };
    try {
      await producer.send({ topic: 'todo-history-events', acks: -1, messages: [{ key: 'external-group', value: JSON.stringify(event) }] });
    } finally {
      await producer.disconnect();
    }
    await waitFor(async () => (await call(system, 'GET', '/api/logs/task/external-task-1')).body?.items?.length === 1, 30_000, 'the row');
    const { body } = await call(system, 'GET', '/api/logs/task/external-task-1');
    expect(body.items[0]).toMatchObject({
      eventType: 'created',
      entity: 'Task',
      entityId: 'external-task-1',
      groupId: 'external-group',
      groupName: 'From another service',
      taskName: 'Written straight to Kafka',
      user: 'go-service',
      timestamp: '2026-11-20T10:00:00.000Z',
    });
    const [row] = await historyRows(system, `entity_id = 'external-task-1'`);
    expect(row?.source_topic).toBe('todo-history-events');
    expect(row?.source_partition).not.toBeNull();
  });

  it('carries API changes through the relay and Kafka into the history', async () => {
    const before = await countRows(system);
    const group = await call(system, 'POST', '/api/groups', { name: 'Via Kafka', user: 'alice' });
    expect(group.status).toBe(201);
    const groupId: string = group.body.groupId;
    await call(system, 'POST', `/api/groups/${groupId}/tasks`, { name: 'Relayed', user: 'alice' });
    await waitFor(async () => (await countRows(system)) >= before + 2, 30_000, 'two relayed rows');
    const { body } = await call(system, 'GET', `/api/logs/group/${groupId}`);
    expect(body.items.map((item: { eventType: string; entity: string }) => `${item.entity}:${item.eventType}`)).toEqual([
      'Task:created',
      'Group:created',
    ]);
    const relay = await call(system, 'GET', '/ops/api/relay');
    expect(relay.body).toMatchObject({ published: expect.any(Number) });
    expect(relay.body.published).toBeGreaterThanOrEqual(2);
  });
});
