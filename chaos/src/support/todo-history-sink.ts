import type { Executor } from 'postbox';
import { tally } from './delivery-count.js';

/** Times each message id appears in todo_event_logs. */
export async function historyRowsByMessageId(db: Executor): Promise<Map<string, number>> {
  const { rows } = await db.query<{ message_id: string }>('select message_id from todo_event_logs');
  return tally(rows.map((row) => row.message_id));
}

/**
 * The history's own bookkeeping: every stored row has its id recorded and every recorded id its
 * row, and no valid event went to dead letters.
 */
export async function historySinkViolations(db: Executor): Promise<string[]> {
  const { rows } = await db.query<{ ids_without_row: number; rows_without_id: number; dead_letters: number }>(
    `select
       (select count(*)::int from todo_event_log_ids i where not exists (select 1 from todo_event_logs l where l.message_id = i.message_id)) as ids_without_row,
       (select count(*)::int from todo_event_logs l where not exists (select 1 from todo_event_log_ids i where i.message_id = l.message_id)) as rows_without_id,
       (select count(*)::int from postbox.dead_letters) as dead_letters`,
  );
  const counts = rows[0] ?? { ids_without_row: 0, rows_without_id: 0, dead_letters: 0 };
  const violations: string[] = [];
  if (counts.ids_without_row > 0) violations.push(`${counts.ids_without_row} recorded message ids have no history row`);
  if (counts.rows_without_id > 0) violations.push(`${counts.rows_without_id} history rows have no recorded message id`);
  if (counts.dead_letters > 0) violations.push(`${counts.dead_letters} valid events went to dead letters`);
  return violations;
}
