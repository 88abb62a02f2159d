import type { FastifyInstance } from 'fastify';
import type { Executor } from 'postbox';
import { badRequest } from '../errors.js';
import { decodeFeedCursor } from './cursor.js';
import type { LiveFeed } from './live-feed.js';
import { listGroupSummaries, listLogs, listTaskSummaries } from './log-queries.js';
import { parseEntityId, parseListQuery } from './query-params.js';

/** The four history reads, with cursor pagination, time ranges and filters; and the live feed. */
export function registerQueryRoutes(app: FastifyInstance, db: Executor, feed: LiveFeed): void {
  app.get('/api/logs/groups', async (request) => listGroupSummaries(db, parseListQuery(request.query)));

  app.get('/api/logs/group/:groupId', async (request) => {
    const groupId = parseEntityId((request.params as Record<string, unknown>).groupId, 'groupId', 'path');
    return listLogs(db, { groupId }, parseListQuery(request.query));
  });

  app.get('/api/logs/group/:groupId/tasks', async (request) => {
    const groupId = parseEntityId((request.params as Record<string, unknown>).groupId, 'groupId', 'path');
    return listTaskSummaries(db, groupId, parseListQuery(request.query));
  });

  app.get('/api/logs/task/:taskId', async (request) => {
    const taskId = parseEntityId((request.params as Record<string, unknown>).taskId, 'taskId', 'path');
    return listLogs(db, { taskId }, parseListQuery(request.query));
  });

  app.get('/api/logs/stream', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const groupId = query.groupId === undefined ? undefined : parseEntityId(query.groupId, 'groupId', 'query');
    const taskId = query.taskId === undefined ? undefined : parseEntityId(query.taskId, 'taskId', 'query');
    const after = query.after ?? request.headers['last-event-id'];
    const cursor = typeof after === 'string' ? decodeFeedCursor(after) : undefined;
    if (after !== undefined && cursor === undefined) {
      throw badRequest(
        'parameter after (or the Last-Event-ID header) must be the id of an event of this stream, <transaction>.<row id> such as 1234.56, or 0 for the beginning',
        { field: 'after' },
      );
    }
    const start = cursor ?? (await feed.currentCursor());
    reply.hijack();
    feed.subscribe(reply.raw, { groupId, taskId }, start);
  });
}
