import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isPostboxError, type Logger, ValidationError } from 'postbox';
import { ApiError, errorBody, notFound } from '../errors.js';

/** Connection-level SQLSTATE classes: the database is unreachable or shutting down. */
const unavailable = /^(08|53|57)/;

/** Every error as `{ error: { code, message } }` with its status; details of a 500 stay in the log. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const fastify = error as FastifyError;
  switch (fastify.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('TODO_ERR_BODY_TOO_LARGE', `${fastify.message}; send a smaller body.`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('TODO_ERR_UNSUPPORTED_MEDIA_TYPE', 'Send the body as JSON with the header Content-Type: application/json.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError('TODO_ERR_BAD_JSON', fastify.message);
  }
  if (error instanceof ValidationError) return new ApiError('TODO_ERR_BAD_REQUEST', error.message);
  if (isPostboxError(error, 'POSTBOX_ERR_CLOSED')) return new ApiError('TODO_ERR_UNAVAILABLE', 'The server is shutting down; try again.');
  const sqlState = (error as { code?: unknown }).code;
  if (typeof sqlState === 'string' && unavailable.test(sqlState)) {
    return new ApiError('TODO_ERR_UNAVAILABLE', 'The database is unavailable; try again shortly.');
  }
  if (typeof fastify.statusCode === 'number' && fastify.statusCode >= 400 && fastify.statusCode < 500) {
    return new ApiError('TODO_ERR_BAD_REQUEST', fastify.message);
  }
  return new ApiError('TODO_ERR_INTERNAL', 'The request failed on the server; its log has the details.');
}

/**
 * Errors Fastify raises before routing (a path with malformed percent-encoding, a bad content type
 * header), answered in the API's error format rather than Fastify's own.
 */
export function frameworkErrorHandler(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const apiError = toApiError(error);
  void reply.code(apiError.status).send(errorBody(apiError));
}

/** JSON bodies (an empty one reads as no body), JSON errors, and a JSON 404 for unknown routes. */
export function installErrorHandling(app: FastifyInstance, logger: Logger): void {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(new ApiError('TODO_ERR_BAD_JSON', `The body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });
  app.setErrorHandler((error, request, reply) => {
    const apiError = toApiError(error);
    if (apiError.status >= 500) logger.error({ err: error, method: request.method, url: request.url }, 'request failed');
    return reply.code(apiError.status).send(errorBody(apiError));
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(errorBody(notFound(`Nothing is served at ${request.method} ${request.url.split('?')[0]}.`))),
  );
}
