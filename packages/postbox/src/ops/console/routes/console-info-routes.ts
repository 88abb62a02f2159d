import type { ConsoleRoutes } from '../console-context.js';

/** What the page needs to know about this console: whether changes need a token or are off, and how often to refresh. */
export const consoleInfoRoutes: ConsoleRoutes = (app, { page, relay, sampler }) => {
  app.get('/api/console', async () => ({ ...page, relay: relay !== undefined, sampler: sampler !== undefined }));
};
