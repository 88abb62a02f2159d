import type { Executor } from '../sql/database.js';

export interface TopicStatus {
  topic: string;
  messages: number;
  lastPublishedAt: Date | null;
}

/** Every topic of the log with its number of messages and when the latest was written. */
export async function topicTotals(db: Executor): Promise<TopicStatus[]> {
  const { rows } = await db.query<{ topic: string; messages: number; last_published_at: Date | null }>(
    `select topic, count(*)::int as messages, max(created_at) as last_published_at
     from postbox.messages group by topic order by topic`,
  );
  return rows.map((row) => ({ topic: row.topic, messages: Number(row.messages), lastPublishedAt: row.last_published_at }));
}

/** The topic of the newest message, on the primary key alone (no count over the log); undefined when the log is empty. */
export async function latestTopic(db: Executor): Promise<string | undefined> {
  const { rows } = await db.query<{ topic: string }>('select topic from postbox.messages order by global_position desc limit 1');
  return rows[0]?.topic;
}
