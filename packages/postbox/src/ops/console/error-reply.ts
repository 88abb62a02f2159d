import type { ErrorCode } from '../../errors/codes.js';
import { PostboxError } from '../../errors/postbox-error.js';
import { redactUrl } from '../../sql/connection-secrets.js';

/** The body of every failed console request: `{ error: { code, message } }`, as the reference app answers. */
export interface ErrorBody {
  error: { code: string; message: string };
}

export interface ErrorReply {
  status: number;
  body: ErrorBody;
  /** A failure of the server rather than of the request: worth a line in the log. */
  unexpected: boolean;
}

const statusByCode: Partial<Record<ErrorCode, number>> = {
  POSTBOX_ERR_BAD_REQUEST: 400,
  POSTBOX_ERR_BAD_OPTION: 400,
  POSTBOX_ERR_BAD_NAME: 400,
  POSTBOX_ERR_MESSAGE_NOT_IN_GROUP: 400,
  POSTBOX_ERR_UNAUTHORIZED: 401,
  POSTBOX_ERR_CONSOLE_READ_ONLY: 403,
  POSTBOX_ERR_CONSOLE_UNGUARDED: 403,
  POSTBOX_ERR_DEAD_LETTER_NOT_FOUND: 404,
  POSTBOX_ERR_GROUP_NOT_FOUND: 404,
  POSTBOX_ERR_MESSAGE_NOT_FOUND: 404,
  POSTBOX_ERR_PROJECTION_NOT_FOUND: 404,
  POSTBOX_ERR_PARKED_NOT_FOUND: 404,
  POSTBOX_ERR_SCHEDULED_MESSAGE_NOT_FOUND: 404,
  POSTBOX_ERR_SCHEDULE_NOT_FOUND: 404,
  POSTBOX_ERR_GROUP_BUSY: 409,
  POSTBOX_ERR_PROJECTION_STATE: 409,
  POSTBOX_ERR_TRANSACTION_IDS_BEHIND: 409,
  POSTBOX_ERR_CLOSED: 503,
  POSTBOX_ERR_CONNECTION: 503,
};

/** SQLSTATE classes of a database that cannot be reached or is shutting down, and node's socket errors. */
const unavailable = /^(08|53|57)|^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND)$/;

const reply = (status: number, code: string, message: string, unexpected = false): ErrorReply => ({
  status,
  body: { error: { code, message: redactUrl(message) } },
  unexpected,
});

/** The status and body of a failed console request; a failure of the server says only that the log has details. */
export function errorReply(error: unknown): ErrorReply {
  if (error instanceof PostboxError) {
    const given = Number(error.details.status);
    const status = error.code === 'POSTBOX_ERR_BAD_REQUEST' && given >= 400 && given < 500 ? given : (statusByCode[error.code] ?? 500);
    return reply(status, error.code, error.message, status >= 500 && status !== 503);
  }
  const { code, statusCode, status, message } = error as { code?: unknown; statusCode?: unknown; status?: unknown; message?: unknown };
  // Fastify's own refusals (a body that is not JSON, too large, of another type), and a host's parser errors.
  const requestStatus = typeof statusCode === 'number' ? statusCode : typeof status === 'number' ? status : undefined;
  if (requestStatus !== undefined && requestStatus >= 400 && requestStatus < 500) {
    return reply(requestStatus, 'POSTBOX_ERR_BAD_REQUEST', String(message ?? 'The request is malformed.'));
  }
  if (typeof code === 'string' && unavailable.test(code)) {
    return reply(503, 'POSTBOX_ERR_CONNECTION', 'The database is unavailable; try again shortly.');
  }
  return reply(500, 'POSTBOX_ERR_UNEXPECTED', 'The request failed on the server; its log has the details.', true);
}
