import { ValidationError } from '../errors/postbox-error.js';

/** Lower case, starting with a letter or underscore, at most 63 bytes: what PostgreSQL keeps unquoted and untruncated. */
const plainIdentifier = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Checks a schema, table or channel name that comes from configuration or a caller before it is
 * put into SQL text; anything else is refused with POSTBOX_ERR_BAD_OPTION. Callers still quote it.
 */
export function checkIdentifier(name: unknown, what: string): string {
  if (typeof name !== 'string' || !plainIdentifier.test(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name.slice(0, 80)) : typeof name;
    throw new ValidationError(
      'POSTBOX_ERR_BAD_OPTION',
      `${what} must be a plain lower-case identifier: a letter or underscore, then letters, digits or underscores, at most 63 in all (got ${shown}).`,
      { option: what },
    );
  }
  return name;
}

/** A checked identifier in double quotes, safe to put into SQL text. */
export function quoteIdentifier(name: unknown, what: string): string {
  return `"${checkIdentifier(name, what)}"`;
}
