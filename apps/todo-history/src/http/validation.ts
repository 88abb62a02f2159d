import { z } from 'zod';
import { badRequest } from '../errors.js';

/**
 * A string PostgreSQL can store and give back unchanged: no NUL, no unpaired surrogate, and no
 * leading U+FEFF, which embedded PGlite drops when it reads text (trimming removes one anyway).
 */
export function storableText(max: number, options: { min?: number; trim?: boolean } = {}) {
  const base = options.trim === false ? z.string() : z.string().trim();
  return base
    .min(options.min ?? 1, options.min === 0 ? undefined : 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .refine((value) => !value.includes('\u0000') && value.isWellFormed(), 'must not hold NUL or unpaired surrogate characters')
    .refine((value) => !value.startsWith('\ufeff'), 'must not start with U+FEFF (a byte-order mark)');
}

/** Where a value came from, for messages: "body", "query" or "path". */
export type Part = 'body' | 'query' | 'path';

/** Parses a request part; a failure answers 400 naming the first offending field. */
export function parseRequest<S extends z.ZodType>(schema: S, value: unknown, part: Part): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0] as z.core.$ZodIssue;
  const field = issue.path.map(String).join('.');
  const what = field ? `${part === 'body' ? 'field' : 'parameter'} ${field}` : part;
  throw badRequest(`${what} ${describeIssue(issue, valueAt(value, issue.path))}`, { field: field || undefined });
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  if (input === undefined && (issue.code === 'invalid_type' || issue.code === 'invalid_value')) return 'is required';
  if (issue.code === 'invalid_type') return `must be ${issue.expected === 'object' ? 'a JSON object' : `a ${issue.expected}`}`;
  if (issue.code === 'invalid_value') return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  return issue.message;
}
