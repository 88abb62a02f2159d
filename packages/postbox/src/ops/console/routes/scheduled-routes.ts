import { z } from 'zod';
import { defaults } from '../../../config/defaults.js';
import { PostboxError } from '../../../errors/postbox-error.js';
import { cancelScheduled, listScheduled } from '../../../time/scheduled-messages.js';
import { timeStatus } from '../../../time/time-status.js';
import type { ConsoleRoutes } from '../console-context.js';
import { keyText, nameText, parseInput, storableText, wholeNumber } from '../request-input.js';
import { scheduledJson } from '../scheduled-json.js';

const { scheduledLimit, maxScheduledLimit } = defaults.opsConsole;

const listQuery = z.object({
  topic: nameText.optional(),
  key: keyText.optional(),
  limit: wholeNumber(1, maxScheduledLimit).optional(),
});

/**
 * Messages waiting for their delivery time: a list (the soonest due first), the counts and the
 * timekeeper (time status), and cancel, which takes a message off the list so that it is never delivered.
 */
export const scheduledRoutes: ConsoleRoutes = (app, { db }) => {
  app.get('/api/scheduled', async (request) => {
    const query = parseInput(listQuery, request.query, 'query');
    const messages = await listScheduled(db, { ...query, limit: query.limit ?? scheduledLimit });
    return messages.map(scheduledJson);
  });

  app.get('/api/time-status', async () => timeStatus(db));

  // A cancel races the timekeeper's move into the log by nature: a message no longer waiting is a 404.
  app.post('/api/scheduled/:id/cancel', async (request) => {
    const { id } = parseInput(z.object({ id: storableText }), request.params, 'path');
    if (!(await cancelScheduled(db, id))) {
      throw new PostboxError(
        'POSTBOX_ERR_SCHEDULED_MESSAGE_NOT_FOUND',
        `No message ${id} waits for its time: it was delivered already, cancelled before, or never scheduled.`,
        { id },
      );
    }
    return { id, status: 'cancelled' };
  });
};
