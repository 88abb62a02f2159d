import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, openSystem, publishRaw, sampleEvent, type TestSystem, waitFor } from './support/system.js';

describe('the operations console on loopback without a token', () => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await openSystem('postgres');
  });

  afterAll(async () => {
    await system?.cleanup();
  });

  it('shows groups with lag, dead letters with their payload, and retries and discards them', async () => {
    const bad = await publishRaw(system, { ...sampleEvent(), eventType: 'archived' });
    const other = await publishRaw(system, 'not json at all');
    await publishRaw(system, sampleEvent());
    await waitFor(async () => (await call(system, 'GET', '/ops/api/dead-letters')).body.length === 2, 10_000, 'two dead letters');
    await waitFor(
      async () => (await system.postbox.groupStatus('todo-consumer-group-go'))[0]?.lagMessages === 0,
      10_000,
      'the good message',
    );

    const historyGroup = async () =>
      (await call(system, 'GET', '/ops/api/groups')).body.find((g: any) => g.group === 'todo-consumer-group-go');
    await waitFor(async () => (await historyGroup()).partitions.every((p: any) => p.owner !== null), 10_000, 'every partition owned');
    const groups = await call(system, 'GET', '/ops/api/groups');
    expect(groups.status).toBe(200);
    const group = groups.body.find((g: any) => g.group === 'todo-consumer-group-go');
    // Partitioned by HISTORY_PARTITIONS (4): the one-lease fields are for one-partition groups only.
    expect(group).toMatchObject({ topics: ['todo-history-events'], lagMessages: 0, lastError: null, leaseOwner: null, checkpoint: null });
    expect(typeof group.lagSeconds).toBe('number');
    expect(group.members).toHaveLength(1);
    const [member] = group.members;
    expect(member).toMatchObject({ member: expect.any(String), live: true, partitions: [0, 1, 2, 3] });
    expect(group.partitions).toHaveLength(4);
    group.partitions.forEach((partition: any, index: number) => {
      expect(partition).toMatchObject({
        partition: index,
        owner: member.member,
        expiredOwner: null,
        lagMessages: 0,
        unownedSeconds: 0,
        lastError: null,
        checkpoint: { transactionId: expect.stringMatching(/^\d+$/), globalPosition: expect.stringMatching(/^\d+$/) },
      });
    });

    const letters = await call(system, 'GET', '/ops/api/dead-letters');
    const letter = letters.body.find((l: any) => l.messageId === bad);
    expect(letter).toMatchObject({
      group: 'todo-consumer-group-go',
      topic: 'todo-history-events',
      status: 'pending',
      errorCode: 'POSTBOX_ERR_DECODE',
    });
    expect(letter.errorMessage).toMatch(/eventType must be one of/);
    // The list leaves payloads out; one dead letter is shown whole.
    expect(letter).not.toHaveProperty('payload');
    const whole = await call(system, 'GET', `/ops/api/dead-letters/${letter.id}`);
    expect(whole.body).toMatchObject({ id: letter.id, messageId: bad, payload: { eventType: 'archived' }, errorStack: expect.any(String) });

    const retried = await call(system, 'POST', `/ops/api/dead-letters/${letter.id}/retry`, {});
    expect(retried).toMatchObject({ status: 200, body: { id: letter.id, status: 'retrying' } });
    // Still undecodable: the router's redelivery sends it straight back to pending.
    await waitFor(
      async () => (await call(system, 'GET', '/ops/api/dead-letters')).body.find((l: any) => l.messageId === bad)?.status === 'pending',
      10_000,
      'the retried letter to be dead again',
    );

    const otherLetter = (await call(system, 'GET', '/ops/api/dead-letters')).body.find((l: any) => l.messageId === other);
    expect((await call(system, 'POST', `/ops/api/dead-letters/${otherLetter.id}/discard`)).body).toEqual({
      id: otherLetter.id,
      status: 'discarded',
    });
    expect((await call(system, 'GET', '/ops/api/dead-letters')).body.map((l: any) => l.messageId)).toEqual([bad]);

    for (const id of ['999999999', 'abc']) {
      const missing = await call(system, 'POST', `/ops/api/dead-letters/${id}/retry`);
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe('POSTBOX_ERR_DEAD_LETTER_NOT_FOUND');
    }
    expect((await call(system, 'GET', '/ops/api/dead-letters?limit=0')).status).toBe(400);
    expect((await call(system, 'GET', '/ops/api/relay')).body).toEqual({ enabled: false });
  });

  it("serves the console page under /ops/, linked from the app's page", async () => {
    const page = await call(system, 'GET', '/ops/');
    expect(page.status).toBe(200);
    expect(page.response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.response.body).toContain('<title>Postbox console</title>');
    expect((await call(system, 'GET', '/ops/assets/js/main.js')).status).toBe(200);
    expect((await call(system, 'GET', '/ops/api/console')).body).toMatchObject({
      tokenRequired: false,
      tokenName: 'OPS_TOKEN',
      readOnly: false,
    });
    const home = await call(system, 'GET', '/');
    expect(home.status).toBe(200);
    expect(home.response.body).toContain('href="ops/"');
  });

  it('serves health and metrics on the same app', async () => {
    expect((await call(system, 'GET', '/health/live')).status).toBe(200);
    const ready = await call(system, 'GET', '/health/ready');
    expect(ready.status).toBe(200);
    const names = ready.body.checks.map((check: any) => check.name);
    expect(names).toEqual(
      expect.arrayContaining(['database', 'schema', 'schema:todo-history', 'history-consumer', 'group:todo-consumer-group-go']),
    );
    const metrics = await call(system, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.response.body).toContain('postbox_consumer_lag_messages{group="todo-consumer-group-go",partition="0"}');
    expect(metrics.response.body).toMatch(
      /postbox_messages_handled_total\{group="todo-consumer-group-go",handler="todo-history",outcome="dead_lettered"\} [1-9]/,
    );
    expect(metrics.response.body).toMatch(/todo_history_rows_stored_total [1-9]/);
  });

  it('reports the history schema and a stopped consumer as unhealthy', async () => {
    await system.postbox.db.query('update todo_history.schema_migrations set version = 99 where version = 2');
    try {
      const ready = await call(system, 'GET', '/health/ready');
      expect(ready.status).toBe(503);
      expect(ready.body.checks.find((check: any) => check.name === 'schema:todo-history')).toMatchObject({ status: 'unhealthy' });
    } finally {
      await system.postbox.db.query('update todo_history.schema_migrations set version = 2 where version = 99');
    }
    await system.router.stop();
    const stopped = await call(system, 'GET', '/health/ready');
    expect(stopped.body.checks.find((check: any) => check.name === 'history-consumer')).toMatchObject({ status: 'unhealthy' });
  });
});

describe('the operations console guard', () => {
  const systems: TestSystem[] = [];

  afterAll(async () => {
    for (const system of systems) await system.cleanup();
  });

  it('needs the bearer token when OPS_TOKEN is set', async () => {
    const system = await openSystem('postgres', { OPS_TOKEN: 'open-sesame-123' });
    systems.push(system);
    const without = await call(system, 'POST', '/ops/api/dead-letters/1/retry');
    expect(without.status).toBe(401);
    expect(without.body.error).toMatchObject({
      code: 'POSTBOX_ERR_UNAUTHORIZED',
      message: expect.stringContaining('Authorization: Bearer <OPS_TOKEN>'),
    });
    const wrong = await call(system, 'POST', '/ops/api/dead-letters/1/discard', undefined, { authorization: 'Bearer open-sesame-124' });
    expect(wrong.status).toBe(401);
    const right = await call(system, 'POST', '/ops/api/dead-letters/1/retry', undefined, { authorization: 'Bearer open-sesame-123' });
    expect(right.status).toBe(404);
    expect((await call(system, 'GET', '/ops/api/groups')).status).toBe(200);
  });

  it('makes the console read-only off loopback without OPS_TOKEN, and says how to enable changes', async () => {
    const system = await openSystem('postgres', { HOST: '0.0.0.0' });
    systems.push(system);
    const answer = await call(system, 'POST', '/ops/api/dead-letters/1/discard');
    expect(answer.status).toBe(403);
    expect(answer.body.error.code).toBe('POSTBOX_ERR_CONSOLE_READ_ONLY');
    expect(answer.body.error.message).toMatch(/Set OPS_TOKEN/);
    expect((await call(system, 'GET', '/ops/api/console')).body).toMatchObject({ readOnly: true });
    expect((await call(system, 'GET', '/ops/api/dead-letters')).status).toBe(200);
  });
});
