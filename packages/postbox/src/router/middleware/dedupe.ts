import type { Executor } from '../../sql/database.js';
import type { Middleware } from '../handler.js';

/**
 * Skips a message id the group has already handled, using an inbox table in PostgreSQL. The id is
 * recorded after success, in the batch's transaction when there is one, so it commits with the
 * handler's writes. Dead-lettered messages are not recorded, so a retry from dead letters runs.
 */
export function dedupe(db: Executor): Middleware {
  return (next) => async (message, context) => {
    const executor = context.tx ?? db;
    const seen = await executor.query('select 1 from postbox.inbox where group_name = $1 and message_id = $2', [context.group, message.id]);
    if (seen.rows.length > 0) {
      context.logger.debug('duplicate message skipped');
      return 'duplicate';
    }
    const outcome = await next(message, context);
    if (outcome === 'handled') {
      await executor.query('insert into postbox.inbox (group_name, message_id) values ($1, $2) on conflict do nothing', [
        context.group,
        message.id,
      ]);
    }
    return outcome;
  };
}

/** Forgets inbox entries older than the retention window. */
export async function pruneInbox(db: Executor, retentionMs: number): Promise<number> {
  const { rowCount } = await db.query(`delete from postbox.inbox where processed_at < now() - $1 * interval '1 millisecond'`, [
    retentionMs,
  ]);
  return rowCount;
}
