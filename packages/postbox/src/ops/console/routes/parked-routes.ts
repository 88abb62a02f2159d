import { z } from 'zod';
import { defaults } from '../../../config/defaults.js';
import { PostboxError } from '../../../errors/postbox-error.js';
import { discardParked, listParked, parkedCounts, releaseParked } from '../../../parking/parked-admin.js';
import type { Database } from '../../../sql/database.js';
import type { ConsoleRoutes } from '../console-context.js';
import { parkedJson } from '../parked-json.js';
import { keyText, nameText, parseInput, storableText, wholeNumber } from '../request-input.js';

const { parkedLimit, maxParkedLimit } = defaults.opsConsole;

const listQuery = z.object({
  group: nameText.optional(),
  key: keyText.optional(),
  status: z.enum(['waiting', 'follower', 'dead_lettered']).optional(),
  limit: wholeNumber(1, maxParkedLimit).optional(),
});

const idParams = z.object({ id: storableText });

/** A key of a group; keys go in the body, since they may hold any character and be longer than a path segment allows. */
const keyBody = z.object({ group: nameText, key: keyText });

/** The first parked message of a key: the one attempted next, which holds the others back. */
async function firstOfKey(db: Database, group: string, key: string) {
  const [first] = await listParked(db, { group, key, limit: 1 });
  if (!first) {
    throw new PostboxError('POSTBOX_ERR_PARKED_NOT_FOUND', `Group ${group} has nothing parked under key ${JSON.stringify(key)}.`, {
      group,
      key,
    });
  }
  return first;
}

/**
 * Parked messages: a list (each key's in log order), counts by group with the oldest's age, and
 * release and discard, of one message by id or of a key of a group. Releasing a key has its first
 * parked message attempted at once; discarding drops one message, and the next of its key comes due.
 */
export const parkedRoutes: ConsoleRoutes = (app, { db }) => {
  app.get('/api/parked', async (request) => {
    const query = parseInput(listQuery, request.query, 'query');
    const parked = await listParked(db, { ...query, limit: query.limit ?? parkedLimit });
    return parked.map(parkedJson);
  });

  app.get('/api/parked/counts', async () => parkedCounts(db));

  app.post('/api/parked/:id/release', async (request) => {
    const { id } = parseInput(idParams, request.params, 'path');
    return { released: parkedJson(await releaseParked(db, { id })) };
  });

  app.post('/api/parked/:id/discard', async (request) => {
    const { id } = parseInput(idParams, request.params, 'path');
    return { discarded: parkedJson(await discardParked(db, id)) };
  });

  app.post('/api/parked/release', async (request) => {
    const target = parseInput(keyBody, request.body, 'body');
    return { released: parkedJson(await releaseParked(db, target)) };
  });

  // A key's first parked message: the one that holds the rest of the key back.
  app.post('/api/parked/discard', async (request) => {
    const { group, key } = parseInput(keyBody, request.body, 'body');
    const first = await firstOfKey(db, group, key);
    return { discarded: parkedJson(await discardParked(db, first.id)) };
  });
};
