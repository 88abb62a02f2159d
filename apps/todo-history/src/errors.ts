/** Every error code the HTTP API answers with, and its status. Codes are stable; messages say what to do. */
export const apiErrors = Object.freeze({
  TODO_ERR_BAD_REQUEST: 400,
  TODO_ERR_BAD_JSON: 400,
  TODO_ERR_NOT_FOUND: 404,
  TODO_ERR_BODY_TOO_LARGE: 413,
  TODO_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  TODO_ERR_UNAVAILABLE: 503,
  TODO_ERR_INTERNAL: 500,
});

export type ApiErrorCode = keyof typeof apiErrors;

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;

  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.status = apiErrors[code];
  }
}

export const badRequest = (message: string, details: Record<string, unknown> = {}) =>
  new ApiError('TODO_ERR_BAD_REQUEST', message, details);
export const notFound = (message: string) => new ApiError('TODO_ERR_NOT_FOUND', message);

/** The JSON body of every error answer. */
export function errorBody(error: ApiError): { error: { code: ApiErrorCode; message: string } & Record<string, unknown> } {
  return { error: { code: error.code, message: error.message, ...error.details } };
}
