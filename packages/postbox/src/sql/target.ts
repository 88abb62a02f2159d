import { createHash } from 'node:crypto';
import { asExecutor, type CallerTransaction, type Database, type Executor } from './database.js';

/** A Postbox Database, a caller's open transaction, or an Executor. */
export type Target = Database | CallerTransaction | Executor;

export function isDatabase(target: Target): target is Database {
  const candidate = target as Partial<Database>;
  return typeof candidate.transaction === 'function' && typeof candidate.queryNamed === 'function' && typeof candidate.kind === 'string';
}

const names = new Map<string, string>();

function statementName(text: string): string {
  let name = names.get(text);
  if (!name) {
    name = `postbox_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
    names.set(text, name);
  }
  return name;
}

/**
 * An executor over the target. On a Database every statement is prepared once per connection; a
 * caller's transaction runs statements as they are.
 */
export function executorFor(target: Target): Executor {
  if (!isDatabase(target)) return asExecutor(target);
  return {
    query: (text, params = []) => target.queryNamed(statementName(text), text, params),
    exec: (script) => target.exec(script),
    preparesStatements: target.preparesNamedStatements,
  };
}

/** Runs fn in a transaction: the caller's when it gave one, otherwise one of the database's own. */
export function inTransaction<T>(target: Target, fn: (tx: Executor) => Promise<T>): Promise<T> {
  return isDatabase(target) ? target.transaction(fn) : fn(asExecutor(target));
}
