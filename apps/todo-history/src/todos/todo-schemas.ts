import { z } from 'zod';
import { appDefaults } from '../defaults.js';
import { storableText } from '../http/validation.js';

const { limits } = appDefaults;

export const taskStatuses = ['pending', 'in-progress', 'completed'] as const;
export type TaskStatus = (typeof taskStatuses)[number];

const user = storableText(limits.user);

export const createGroupBody = z.object({
  name: storableText(limits.name),
  workspace: storableText(limits.workspace).optional(),
  user,
});

export const renameGroupBody = z.object({ name: storableText(limits.name), user });

export const createTaskBody = z.object({
  name: storableText(limits.name),
  description: storableText(limits.description, { min: 0, trim: false }).optional(),
  user,
});

export const updateTaskBody = z
  .object({
    name: storableText(limits.name).optional(),
    description: storableText(limits.description, { min: 0, trim: false }).optional(),
    user,
  })
  .refine((body) => body.name !== undefined || body.description !== undefined, {
    message: 'must hold name or description (or both)',
  });

export const statusBody = z.object({ status: z.enum(taskStatuses), user });

export const commentBody = z.object({ text: storableText(limits.comment), user });

/** DELETE takes the acting user in the query string: ?user=U. */
export const userQuery = z.object({ user });

/** Ids are UUIDs; anything else names no entity, which is a 404 rather than a 400. */
export const isUuid = (value: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
