import type { Executor } from 'postbox';
import { tally } from './delivery-count.js';

/** The effects a transactional handler writes in its batch's transaction: one row per message handled. */
export async function createEffectsTable(db: Executor): Promise<void> {
  await db.query(
    'create table chaos_effects (message_id uuid not null, owner text not null, recorded_at timestamptz not null default clock_timestamp())',
  );
}

export async function recordEffects(tx: Executor | undefined, messageIds: readonly string[], owner: string): Promise<void> {
  await tx?.query('insert into chaos_effects (message_id, owner) select unnest($1::uuid[]), $2', [messageIds, owner]);
}

/** How many effect rows each message id has. */
export async function countEffects(db: Executor): Promise<Map<string, number>> {
  const { rows } = await db.query<{ message_id: string }>('select message_id::text as message_id from chaos_effects');
  return tally(rows.map((row) => row.message_id));
}
