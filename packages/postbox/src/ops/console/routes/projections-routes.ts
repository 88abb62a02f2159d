import { z } from 'zod';
import { projectionStatuses } from '../../../projections/projection-status.js';
import { pauseProjection, requestRebuild, resumeProjection } from '../../../projections/projection-store.js';
import type { ConsoleRoutes } from '../console-context.js';
import { nameText, parseInput } from '../request-input.js';

const actions = { rebuild: requestRebuild, pause: pauseProjection, resume: resumeProjection } as const;

/** Projections with their status and lag; rebuild, pause and resume, which the processes running them honour. */
export const projectionsRoutes: ConsoleRoutes = (app, { db }) => {
  app.get('/api/projections', async () => projectionStatuses(db));

  for (const [action, apply] of Object.entries(actions)) {
    app.post(`/api/projections/:name/${action}`, async (request) => {
      const { name } = parseInput(z.object({ name: nameText }), request.params, 'path');
      return apply(db, name);
    });
  }
};
