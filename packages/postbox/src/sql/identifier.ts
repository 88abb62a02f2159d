import { ValidationError } from '../errors/postbox-error.js';

/** Lower case, starting with a letter or underscore, at most 63 bytes: what PostgreSQL keeps unquoted and untruncated. */
const plainIdentifier = /^[a-z_][a-z0-9_]{0,62}$/;

/** Words PostgreSQL does not take as an unquoted table or schema name (reserved, and reserved for functions and types). */
const reservedWords = new Set(
  (
    'all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate collation column ' +
    'concurrently constraint create cross current_catalog current_date current_role current_schema current_time ' +
    'current_timestamp current_user default deferrable desc distinct do else end except false fetch for foreign freeze from ' +
    'full grant group having ilike in initially inner intersect into is isnull join lateral leading left like limit localtime ' +
    'localtimestamp natural not notnull null offset on only or order outer overlaps placing primary references returning ' +
    'right select session_user similar some symmetric system_user table tablesample then to trailing true union unique user ' +
    'using variadic verbose when where window with'
  ).split(' '),
);

/**
 * Checks a schema, table or channel name that comes from configuration or a caller before it is
 * put into SQL text; anything else is refused with POSTBOX_ERR_BAD_OPTION.
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

/**
 * A checked identifier ready for SQL text, quoted when PostgreSQL needs it (a reserved word), as
 * its own quote_ident() does; a checked name holds no quote, so quoting cannot be escaped.
 */
export function quoteIdentifier(name: unknown, what: string): string {
  const checked = checkIdentifier(name, what);
  return reservedWords.has(checked) ? `"${checked}"` : checked;
}
