import type { ConsoleRoutes } from '../console-context.js';

/** The relay's statistics when the console was given a relay; `{ enabled: false }` otherwise. */
export const relayRoutes: ConsoleRoutes = (app, { relay }) => {
  app.get('/api/relay', async () => (relay ? { enabled: true, ...(await relay.stats()) } : { enabled: false }));
};
