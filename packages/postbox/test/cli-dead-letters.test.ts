import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDeadLetter } from '../src/deadletters/dead-letter-store.js';
import { Postbox } from '../src/postbox.js';
import { cli, lines } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';

describe('postbox dead-letters', () => {
  let database: TestDatabase;
  let postbox: Postbox;
  let env: Record<string, string>;

  async function letter(group: string, topic: string, messageId: string) {
    await addDeadLetter(postbox.db, {
      group,
      handler: group,
      source: 'log',
      messageId,
      topic,
      type: 'order.placed',
      key: 'k',
      payload: { messageId },
      rawPayload: null,
      headers: { schemaVersion: 1 },
      sourcePosition: '1/1',
      error: Object.assign(new Error(`failed ${messageId}`), { code: 'E_TEST' }),
      attempts: 3,
      firstFailedAt: new Date('2026-01-01T00:00:00Z'),
      lastFailedAt: new Date('2026-01-01T00:00:05Z'),
    });
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    postbox = await Postbox.create({ databaseUrl: database.url });
    env = { DATABASE_URL: database.url };
    await letter('billing', 'orders', 'm-1');
    await letter('billing', 'payments', 'm-2');
    await letter('shipping', 'orders', 'm-3');
  });
  afterAll(async () => {
    await postbox.close();
    await database.drop();
  });

  it('lists, filters, shows, retries and discards', async () => {
    const all = await cli(['dead-letters', 'list', '--json'], env);
    expect(all.code).toBe(0);
    const listed = lines(all.stdout).map((line) => JSON.parse(line) as { id: string; group: string; messageId: string; errorCode: string });
    expect(listed.map((l) => l.messageId)).toEqual(['m-1', 'm-2', 'm-3']);
    expect(listed[0]?.errorCode).toBe('E_TEST');

    const billingOrders = await cli(['dead-letters', 'list', '--group', 'billing', '--topic', 'orders'], env);
    expect(lines(billingOrders.stdout)).toHaveLength(2);
    expect(billingOrders.stdout).toContain('failed m-1');

    const shown = await cli(['dead-letters', 'show', listed[1]?.id as string], env);
    expect(JSON.parse(shown.stdout)).toMatchObject({ messageId: 'm-2', attempts: 3, payload: { messageId: 'm-2' }, status: 'pending' });

    const retried = await cli(['dead-letters', 'retry', listed[0]?.id as string], env);
    expect(retried.stdout.trim()).toBe('1 dead letter queued for redelivery.');
    const discarded = await cli(['dead-letters', 'discard', '--all', '--group', 'billing'], env);
    expect(discarded.stdout.trim()).toBe('2 dead letters discarded.');

    const { rows } = await postbox.db.query<{ message_id: string; status: string }>(
      'select message_id, status from postbox.dead_letters order by message_id',
    );
    expect(rows).toEqual([
      { message_id: 'm-1', status: 'discarded' },
      { message_id: 'm-2', status: 'discarded' },
      { message_id: 'm-3', status: 'pending' },
    ]);
  });

  it('explains a missing id, an unknown id and a missing target', async () => {
    const unknown = await cli(['dead-letters', 'show', '999999'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^postbox: POSTBOX_ERR_DEAD_LETTER_NOT_FOUND: /);
    const garbage = await cli(['dead-letters', 'retry', '1; drop table postbox.messages'], env);
    expect(garbage.code).toBe(1);
    expect(garbage.stderr).toMatch(/POSTBOX_ERR_DEAD_LETTER_NOT_FOUND/);
    const neither = await cli(['dead-letters', 'retry'], env);
    expect(neither.code).toBe(1);
    expect(neither.stderr).toMatch(/^postbox: POSTBOX_ERR_USAGE: Give a dead letter id, or --all/);
  });
});
