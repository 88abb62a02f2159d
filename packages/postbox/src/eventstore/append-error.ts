import { ValidationError } from '../errors/postbox-error.js';
import { readStreamRow } from '../log/streams.js';
import type { Executor } from '../sql/database.js';
import { ConcurrencyError } from './concurrency-error.js';
import type { ExpectedVersion } from './event.js';
import { StreamStateError } from './stream-state-error.js';

interface DriverError {
  code?: unknown;
  detail?: unknown;
  constraint?: unknown;
  message?: unknown;
}

function detailOf(error: DriverError): { actual?: number } {
  try {
    return typeof error.detail === 'string' ? (JSON.parse(error.detail) as { actual?: number }) : {};
  } catch {
    return {};
  }
}

/** Whether the database refused an append because of the stream's version or state. */
export function isStreamRefusal(error: unknown): boolean {
  const code = (error as DriverError | undefined)?.code;
  return code === 'PBX01' || code === 'PBX02' || code === 'PBX03' || isPositionConflict(error);
}

function isPositionConflict(error: unknown): boolean {
  const driver = error as DriverError | undefined;
  return (
    driver?.code === '23505' &&
    (driver.constraint === 'messages_stream_position_key' || String(driver.message).includes('messages_stream_position_key'))
  );
}

/**
 * Maps what postbox.advance_stream raises to typed errors. A clash on (stream_id, stream_position),
 * which only a writer that bypassed the version check can cause, is a concurrency conflict too;
 * `readVersion` then tells the version (outside the failed transaction).
 */
export async function mapAppendError(
  error: unknown,
  streamId: string,
  expected: ExpectedVersion,
  readVersion: () => Promise<number>,
): Promise<unknown> {
  const driver = error as DriverError | undefined;
  switch (driver?.code) {
    case 'PBX01':
      return new ConcurrencyError(streamId, expected, Number(detailOf(driver).actual ?? 0), { cause: error });
    case 'PBX02':
      return new StreamStateError('POSTBOX_ERR_STREAM_DELETED', streamId, { cause: error });
    case 'PBX03':
      return new StreamStateError('POSTBOX_ERR_STREAM_ARCHIVED', streamId, { cause: error });
    case '22023':
      if (String(driver.message).startsWith('POSTBOX_ERR_BAD_OPTION')) {
        return new ValidationError(
          'POSTBOX_ERR_BAD_OPTION',
          String(driver.message).replace(/^POSTBOX_ERR_BAD_OPTION: /, ''),
          {},
          { cause: error },
        );
      }
      return error;
    default:
      if (isPositionConflict(error)) return new ConcurrencyError(streamId, expected, await readVersion().catch(() => -1), { cause: error });
      return error;
  }
}

export async function currentVersion(db: Executor, streamId: string): Promise<number> {
  const row = await readStreamRow(db, streamId);
  return row ? Number(row.version) : 0;
}
