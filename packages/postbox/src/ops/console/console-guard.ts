import { createHash, timingSafeEqual } from 'node:crypto';
import { defaults } from '../../config/defaults.js';
import { ValidationError } from '../../errors/postbox-error.js';
import { ConsoleError } from './console-errors.js';
import { isLoopbackHost } from './loopback.js';

export interface GuardSettings {
  /** The bearer token every route that changes state needs; without one, such routes work on loopback only. */
  token?: string;
  /** Every route that changes state answers 403, whatever the request carries. */
  readOnly: boolean;
  /** The address the server listens on, when known. */
  host?: string;
  /** What the token is called where it is set, for messages: `OPS_TOKEN`, `POSTBOX_OPS_TOKEN`... */
  tokenName: string;
}

/** A request as the guard sees it: its headers and the local address it arrived on. */
export interface GuardedRequest {
  headers: { authorization?: string | string[] };
  socket?: { localAddress?: string };
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Checks the settings before anything listens: a token must be long enough and fit in a header, and
 * a console that can change state without a token must listen on loopback only.
 */
export function checkGuardSettings(settings: GuardSettings): void {
  const { token, host, tokenName } = settings;
  if (token !== undefined) {
    const min = defaults.opsConsole.minTokenLength;
    if (typeof token !== 'string' || token.length < min || !/^[\x21-\x7e]+$/.test(token)) {
      throw new ValidationError(
        'POSTBOX_ERR_BAD_OPTION',
        `The console token (${tokenName}) must be at least ${min} printable characters without spaces.`,
        { option: 'token' },
      );
    }
    return;
  }
  if (!settings.readOnly && host !== undefined && !isLoopbackHost(host)) {
    throw new ConsoleError(
      'POSTBOX_ERR_CONSOLE_UNGUARDED',
      `The operations console would retry, discard and reset on ${host} without a token, open to anyone who reaches that address. ` +
        `Set ${tokenName} to a secret of at least ${defaults.opsConsole.minTokenLength} characters, make the console read-only, or listen on 127.0.0.1.`,
      { host },
    );
  }
}

/**
 * The check every route that changes state passes before its body is read: the bearer token when
 * there is one (compared in constant time); without one, only requests that arrived on a loopback
 * address, whatever the host said at registration.
 */
export function consoleGuard(settings: GuardSettings): (request: GuardedRequest) => void {
  const expected = settings.token === undefined ? undefined : digest(`Bearer ${settings.token}`);
  return (request) => {
    if (settings.readOnly) {
      throw new ConsoleError(
        'POSTBOX_ERR_CONSOLE_READ_ONLY',
        `This console is read-only: it changes nothing. Set ${settings.tokenName} (a secret of at least ${defaults.opsConsole.minTokenLength} characters) and send Authorization: Bearer <${settings.tokenName}> to retry, discard, reset and rebuild.`,
      );
    }
    if (expected) {
      const given = request.headers.authorization;
      if (typeof given !== 'string' || !timingSafeEqual(digest(given), expected)) {
        throw new ConsoleError(
          'POSTBOX_ERR_UNAUTHORIZED',
          `This operation needs the header Authorization: Bearer <${settings.tokenName}>.`,
        );
      }
      return;
    }
    const local = request.socket?.localAddress;
    if (local !== undefined && !isLoopbackHost(local)) {
      throw new ConsoleError(
        'POSTBOX_ERR_CONSOLE_UNGUARDED',
        `This request arrived on ${local}, not on loopback, and the console has no token: set ${settings.tokenName} to change state from other machines.`,
        { address: local },
      );
    }
  };
}
