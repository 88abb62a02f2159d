import { z } from 'zod';
import { defaults } from '../../config/defaults.js';
import { unstorableReason } from '../../outbox/validate.js';
import { badRequest } from './console-errors.js';

/** Parses a request's query, body or path parameters; the refusal names the parameter and says what it takes. */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, where: 'query' | 'body' | 'path'): T {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const reasons = result.error.issues.map((issue) => {
    const name = issue.path.map(String).join('.');
    return name ? `${name}: ${issue.message}` : issue.message;
  });
  throw badRequest(`Invalid ${where}: ${reasons.join('; ')}.`);
}

/** Text PostgreSQL can hold: refused with the reason when it contains a NUL or a lone surrogate. */
export const storableText = z.string().superRefine((value, context) => {
  const reason = unstorableReason(value);
  if (reason) context.addIssue({ code: 'custom', message: reason });
});

/** A name as the log stores it: 1 to maxNameLength characters. */
export const nameText = storableText.pipe(z.string().min(1).max(defaults.maxNameLength));

/** A message key as the log stores it: 1 to maxKeyLength characters. */
export const keyText = storableText.pipe(z.string().min(1).max(defaults.maxKeyLength));

/** A whole number from min to max, written in plain digits (a query parameter is text). */
export const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .refine(
      (value) => /^\d{1,9}$/.test(value) && Number(value) >= min && Number(value) <= max,
      `must be a whole number from ${min} to ${max}`,
    )
    .transform(Number);
