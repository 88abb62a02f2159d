const secretParameter = /pass|secret|key/i;

/**
 * Replaces the password of every URL in the text, whatever its scheme (a mistyped `mysql://` URL
 * is echoed back in errors too), including a password that itself holds an `@`.
 */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^\s/?#]*@/gi, '$1***@');
}

/**
 * A PostgreSQL URL fit for logs and messages: the password and any password-like query parameter
 * masked. It works from the parsed URL, so a user name holding `@` or a password holding `/`, `#`
 * or a space is masked too.
 */
export function describePostgresUrl(url: string): string {
  if (!URL.canParse(url)) return redactUrl(maskPasswords(url, connectionPasswords(url)));
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  for (const name of [...parsed.searchParams.keys()]) {
    if (secretParameter.test(name)) parsed.searchParams.set(name, '***');
  }
  return parsed.toString();
}

/**
 * The passwords a connection URL carries, as written and decoded, also from a URL too broken to
 * parse (an unencoded `/`, `#` or `?` in the password): everything between the first `:` after the
 * user name and the last `@`.
 */
export function connectionPasswords(url: string | undefined): string[] {
  if (!url) return [];
  const found = new Set<string>();
  const loose = /^[a-z][a-z0-9+.-]*:\/\/[^:/]*:(.*)@[^@]*$/is.exec(url.trim());
  if (loose?.[1]) found.add(loose[1]);
  // A libpq key/value string (`host=db password=secret`) put where a URL belongs.
  for (const [, quoted, bare] of url.matchAll(/\bpassword\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S+))/gi)) {
    const secret = quoted ?? bare;
    if (secret) found.add(secret);
  }
  if (URL.canParse(url)) {
    const parsed = new URL(url);
    if (parsed.password) found.add(parsed.password);
    for (const [name, value] of parsed.searchParams) if (secretParameter.test(name) && value) found.add(value);
  }
  for (const secret of [...found]) found.add(safeDecode(secret));
  // Very short values would mask innocent text; a password that short is no secret anyway.
  return [...found].filter((secret) => secret.length >= 3);
}

/** Replaces every occurrence of the secrets in the text. */
export function maskPasswords(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) result = result.replaceAll(secret, '***');
  return result;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
