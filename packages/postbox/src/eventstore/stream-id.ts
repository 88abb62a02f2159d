import { defaults } from '../config/defaults.js';
import { ValidationError } from '../errors/postbox-error.js';
import type { ExpectedVersion } from './event.js';

/** A stream id is a partition key too, so it follows the key's rules. */
export function checkStreamId(streamId: unknown): string {
  if (typeof streamId !== 'string' || streamId.trim() === '') {
    throw new ValidationError('POSTBOX_ERR_BAD_NAME', `A stream id must be a non-empty string (got ${JSON.stringify(streamId)}).`, {
      field: 'streamId',
    });
  }
  if (streamId.length > defaults.maxKeyLength || streamId.includes('\u0000') || !streamId.isWellFormed()) {
    throw new ValidationError(
      'POSTBOX_ERR_BAD_NAME',
      `A stream id must be at most ${defaults.maxKeyLength} characters of valid text without NUL.`,
      { field: 'streamId' },
    );
  }
  return streamId;
}

/** The prefix before the first '-' (`order` for `order-123`); a stream id without one is its own category. */
export function categoryOf(streamId: string): string {
  const dash = streamId.indexOf('-');
  const category = dash > 0 ? streamId.slice(0, dash) : streamId;
  return category.length > defaults.maxNameLength ? category.slice(0, defaults.maxNameLength) : category;
}

/** The expected version as postbox.advance_stream takes it. */
export function encodeExpectedVersion(expected: ExpectedVersion): string {
  if (expected === 'any' || expected === 'no_stream' || expected === 'stream_exists') return expected;
  if (typeof expected === 'number' && Number.isSafeInteger(expected) && expected >= 0) return String(expected);
  throw new ValidationError(
    'POSTBOX_ERR_BAD_OPTION',
    `expectedVersion must be a non-negative integer, 'no_stream', 'stream_exists' or 'any' (got ${JSON.stringify(expected)}).`,
    { option: 'expectedVersion' },
  );
}

/** Whether a stream at `actual` (0 when it has no events) satisfies `expected`. */
export function versionMatches(expected: ExpectedVersion, actual: number): boolean {
  if (expected === 'any') return true;
  if (expected === 'no_stream') return actual === 0;
  if (expected === 'stream_exists') return actual > 0;
  return expected === actual;
}
