import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Postbox } from '../src/postbox.js';
import { createTestDatabase, type TestDatabase, withAdmin } from './support/postgres.js';
import { delay } from './support/wait.js';

// A server restart, a failover or idle_in_transaction_session_timeout ends connections that are
// inside a transaction. That must fail the transaction, not the process.
describe('a connection lost inside a transaction', () => {
  let database: TestDatabase;
  let postbox: Postbox;
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);

  beforeAll(async () => {
    database = await createTestDatabase();
    postbox = await Postbox.create({ databaseUrl: database.url, pool: { max: 2 } });
    process.on('uncaughtException', onUncaught);
  });
  beforeEach(() => {
    uncaught.length = 0;
  });
  afterAll(async () => {
    process.off('uncaughtException', onUncaught);
    await postbox.close(2_000);
    await database.drop();
  });

  const terminate = (pid: number) => withAdmin((admin) => admin.query('select pg_terminate_backend($1)', [pid]));

  it('rejects the transaction when the server ends the connection between two statements, and the pool goes on', async () => {
    const failed = postbox.transaction(async (tx) => {
      await postbox.enqueue(tx, { topic: 'lost', type: 't', payload: 'never committed' });
      const { rows } = await tx.query<{ pid: number }>('select pg_backend_pid() as pid');
      await terminate(Number(rows[0]?.pid));
      await delay(100);
      await tx.query('select 1');
    });
    // pg reports the next statement on a dead connection as not queryable.
    await expect(failed).rejects.toThrow(/not queryable|terminat/);
    await delay(100);
    expect(uncaught).toEqual([]);

    await postbox.publish({ topic: 'lost', type: 't', payload: 'committed after' });
    const { rows } = await postbox.db.query<{ payload: string }>(`select payload from postbox.messages where topic = 'lost'`);
    expect(rows.map((row) => row.payload)).toEqual(['committed after']);
  });

  it('rejects the transaction when the server ends the connection during a statement', async () => {
    const failed = postbox.transaction(async (tx) => {
      const { rows } = await tx.query<{ pid: number }>('select pg_backend_pid() as pid');
      const pid = Number(rows[0]?.pid);
      setTimeout(() => void terminate(pid), 100);
      await tx.query('select pg_sleep(5)');
    });
    await expect(failed).rejects.toThrow(/terminat/);
    await delay(100);
    expect(uncaught).toEqual([]);
    expect((await postbox.db.query<{ one: number }>('select 1 as one')).rows).toEqual([{ one: 1 }]);
  });
});
