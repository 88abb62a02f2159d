import { z } from 'zod';
import { holdersWorthShowing, watermarkDelayOf, watermarkHolders } from '../../../log/watermark.js';
import type { ConsoleRoutes } from '../console-context.js';
import { parseInput } from '../request-input.js';

const holdersQuery = z.object({
  minSeconds: z
    .string()
    .refine((value) => /^\d{1,6}(\.\d{1,3})?$/.test(value), 'must be a number of seconds, such as 0, 1 or 2.5')
    .transform(Number)
    .optional(),
});

/**
 * The open writing transactions that hold the log's readers back (any database of the server,
 * prepared ones included), the watermark's holder first: those open at least `minSeconds` (0: all),
 * and the watermark's holder as holdersWorthShowing picks it.
 */
export const holdersRoutes: ConsoleRoutes = (app, { db }) => {
  app.get('/api/holders', async (request) => {
    const { minSeconds } = parseInput(holdersQuery, request.query, 'query');
    const holders = await watermarkHolders(db);
    return { watermarkDelaySeconds: watermarkDelayOf(holders), holders: holdersWorthShowing(holders, minSeconds ?? 0) };
  });
};
