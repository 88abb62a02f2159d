import { groupStatuses } from '../../../consumers/status.js';
import type { ConsoleRoutes } from '../console-context.js';
import { groupJson } from '../group-json.js';

/** Consumer groups with their lag, partitions (owner, checkpoint, lag, time without an owner, last error) and members. */
export const groupsRoutes: ConsoleRoutes = (app, { db }) => {
  app.get('/api/groups', async () => (await groupStatuses(db)).map(groupJson));
};
