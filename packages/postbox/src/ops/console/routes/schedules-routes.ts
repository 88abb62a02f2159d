import { z } from 'zod';
import { listSchedules, pauseSchedule, resumeSchedule } from '../../../time/schedule-store.js';
import type { ConsoleRoutes } from '../console-context.js';
import { nameText, parseInput } from '../request-input.js';
import { scheduleJson } from '../scheduled-json.js';

const actions = { pause: pauseSchedule, resume: resumeSchedule } as const;

/** Recurring schedules with their next and last tick; pause, and resume from the first tick after now. */
export const schedulesRoutes: ConsoleRoutes = (app, { db }) => {
  app.get('/api/schedules', async () => (await listSchedules(db)).map(scheduleJson));

  for (const [action, apply] of Object.entries(actions)) {
    app.post(`/api/schedules/:name/${action}`, async (request) => {
      const { name } = parseInput(z.object({ name: nameText }), request.params, 'path');
      return scheduleJson(await apply(db, name));
    });
  }
};
