import { PostboxError } from '../errors/postbox-error.js';
import { maskPasswords, redactUrl as redact } from '../sql/connection-secrets.js';

export type CliErrorCode =
  | 'POSTBOX_ERR_USAGE'
  | 'POSTBOX_ERR_CONNECTION'
  | 'POSTBOX_ERR_GROUP_BUSY'
  | 'POSTBOX_ERR_DATABASE'
  | 'POSTBOX_ERR_OUTPUT'
  | 'POSTBOX_ERR_UNEXPECTED';

/** A failure that belongs to the command line rather than to the library. */
export class CliError extends PostboxError {
  constructor(code: CliErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, {}, options);
  }
}

/**
 * One line, `postbox: <CODE>: <message>`, with any connection password masked: those of URLs in
 * the text, and the given secrets (the passwords of the connection URLs the command was given).
 */
export function errorLine(error: unknown, secrets: readonly string[] = []): string {
  let code: string;
  let message: string;
  if (error instanceof PostboxError) {
    code = error.code;
    message = error.message;
  } else if (error instanceof Error) {
    const driverCode = (error as { code?: unknown }).code;
    // Errors from the server carry a severity; their code is a SQLSTATE.
    const isSqlState = typeof driverCode === 'string' && 'severity' in error;
    code = isSqlState ? 'POSTBOX_ERR_DATABASE' : 'POSTBOX_ERR_UNEXPECTED';
    message = typeof driverCode === 'string' ? `${error.message} (${isSqlState ? 'SQLSTATE ' : ''}${driverCode})` : error.message;
  } else {
    code = 'POSTBOX_ERR_UNEXPECTED';
    message = String(error);
  }
  const oneLine = maskPasswords(message, secrets)
    .replace(/\s*\n\s*/g, ' ')
    .trim();
  return `postbox: ${code}: ${redact(oneLine)}`;
}
