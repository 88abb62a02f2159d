import { z } from 'zod';
import { type ResetTarget, resetGroup } from '../../../consumers/reset.js';
import type { ConsoleRoutes } from '../console-context.js';
import { badRequest } from '../console-errors.js';
import { groupResetJson } from '../group-reset-json.js';
import { nameText, parseInput, storableText } from '../request-input.js';

const resetBody = z.object({
  to: z.union([
    z.enum(['earliest', 'latest']),
    z.object({ time: storableText.pipe(z.string().min(1)) }).strict(),
    z.object({ messageId: storableText.pipe(z.string().min(1)) }).strict(),
  ]),
  dryRun: z.boolean().optional(),
});

function target(to: z.infer<typeof resetBody>['to']): ResetTarget {
  if (typeof to === 'string' || 'messageId' in to) return to;
  const time = new Date(to.time);
  if (Number.isNaN(time.getTime()))
    throw badRequest(
      `Invalid body: to.time must be a date and time, such as 2025-11-10T11:30:00Z (got ${JSON.stringify(to.time.slice(0, 100))}).`,
    );
  return { time };
}

/**
 * Moves a group to read from another place: `{ to: 'earliest' | 'latest' | { time } | { messageId }, dryRun }`.
 * A dry run reports per partition what would be read again or skipped, and changes nothing; a reset
 * is refused (409) while a process runs the group.
 */
export const groupResetRoutes: ConsoleRoutes = (app, { db }) => {
  app.post('/api/groups/:group/reset', async (request) => {
    const { group } = parseInput(z.object({ group: nameText }), request.params, 'path');
    const body = parseInput(resetBody, request.body, 'body');
    return groupResetJson(await resetGroup(db, { group, to: target(body.to), dryRun: body.dryRun === true }));
  });
};
