import type { Executor } from './database.js';

/**
 * Runs fn inside a savepoint of the transaction tx: its writes stay when it resolves, and are undone
 * when it throws, while the rest of the transaction goes on. The error is thrown on.
 */
export async function withSavepoint<T>(tx: Executor, name: string, fn: () => Promise<T>): Promise<T> {
  await tx.query(`savepoint ${name}`);
  let value: T;
  try {
    value = await fn();
  } catch (error) {
    await tx.query(`rollback to savepoint ${name}`);
    throw error;
  }
  await tx.query(`release savepoint ${name}`);
  return value;
}
