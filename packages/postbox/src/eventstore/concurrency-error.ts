import { PostboxError } from '../errors/postbox-error.js';
import type { ExpectedVersion } from './event.js';

/** The stream was not at the expected version: another writer appended first. Retriable: reload and decide again. */
export class ConcurrencyError extends PostboxError {
  readonly streamId: string;
  readonly expected: ExpectedVersion;
  /** The stream's version when the append was refused (0 when it has no events). */
  readonly actual: number;

  constructor(streamId: string, expected: ExpectedVersion, actual: number, options?: ErrorOptions) {
    super(
      'POSTBOX_ERR_CONCURRENCY',
      `Stream ${JSON.stringify(streamId)} is at version ${actual}, but the append expected ${typeof expected === 'number' ? `version ${expected}` : expected}. Reload the stream and decide again.`,
      { streamId, expected, actual },
      options,
    );
    this.streamId = streamId;
    this.expected = expected;
    this.actual = actual;
  }
}
