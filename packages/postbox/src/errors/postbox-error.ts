import { type ErrorCode, errorCodes } from './codes.js';

export class PostboxError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.retriable = errorCodes[code].retriable;
    this.details = Object.freeze({ ...details });
  }
}

/** Input that breaks a rule; nothing was written. */
export class ValidationError extends PostboxError {}

/** The database schema does not match the library. */
export class SchemaVersionError extends PostboxError {}

/** An environment variable or option is invalid; `details.variable` names it. */
export class ConfigError extends PostboxError {}

/** Another process holds the consumer group now; the batch in hand was rolled back. */
export class LeaseLostError extends PostboxError {}

/** A handler failed: it threw a non-Error value, or ran past its timeout. */
export class HandlerError extends PostboxError {}

/** A message's bytes or payload could not be decoded; it is dead-lettered without retries. */
export class DecodeError extends PostboxError {}

export function isPostboxError(value: unknown, code?: ErrorCode): value is PostboxError {
  return value instanceof PostboxError && (code === undefined || value.code === code);
}
