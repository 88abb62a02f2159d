import { z } from 'zod';
import { defaults } from '../../../config/defaults.js';
import {
  deadLetterCounts,
  discardDeadLetters,
  getDeadLetter,
  listDeadLetters,
  retryDeadLetters,
} from '../../../deadletters/dead-letter-store.js';
import type { ConsoleRoutes } from '../console-context.js';
import { deadLetterJson, deadLetterSummaryJson } from '../dead-letter-json.js';
import { nameText, parseInput, storableText, wholeNumber } from '../request-input.js';

const { deadLetterLimit, maxDeadLetterLimit } = defaults.opsConsole;

const listQuery = z.object({
  group: nameText.optional(),
  topic: nameText.optional(),
  status: z.enum(['open', 'pending', 'retrying', 'retried', 'discarded']).optional(),
  limit: wholeNumber(1, maxDeadLetterLimit).optional(),
});

const idParams = z.object({ id: storableText });

/** Dead letters: a filtered list (open ones by default, oldest first), one whole, counts by group, retry and discard. */
export const deadLettersRoutes: ConsoleRoutes = (app, { db }) => {
  app.get('/api/dead-letters', async (request) => {
    const query = parseInput(listQuery, request.query, 'query');
    const letters = await listDeadLetters(db, { ...query, status: query.status ?? 'open', limit: query.limit ?? deadLetterLimit });
    return letters.map(deadLetterSummaryJson);
  });

  app.get('/api/dead-letters/counts', async () => deadLetterCounts(db));

  app.get('/api/dead-letters/:id', async (request) => {
    const { id } = parseInput(idParams, request.params, 'path');
    return deadLetterJson(await getDeadLetter(db, id));
  });

  // Retry sends it back to its own group only; the group's router or projection picks it up.
  app.post('/api/dead-letters/:id/retry', async (request) => {
    const { id } = parseInput(idParams, request.params, 'path');
    await retryDeadLetters(db, { id });
    return { id, status: 'retrying' };
  });

  app.post('/api/dead-letters/:id/discard', async (request) => {
    const { id } = parseInput(idParams, request.params, 'path');
    await discardDeadLetters(db, { id });
    return { id, status: 'discarded' };
  });
};
