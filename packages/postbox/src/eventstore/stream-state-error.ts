import { PostboxError } from '../errors/postbox-error.js';

export type StreamStateErrorCode = 'POSTBOX_ERR_STREAM_DELETED' | 'POSTBOX_ERR_STREAM_ARCHIVED' | 'POSTBOX_ERR_STREAM_NOT_FOUND';

const explanations: Record<StreamStateErrorCode, string> = {
  POSTBOX_ERR_STREAM_DELETED: 'is tombstoned: it takes no more events, and its id cannot be used again',
  POSTBOX_ERR_STREAM_ARCHIVED: 'is archived: restore it before appending',
  POSTBOX_ERR_STREAM_NOT_FOUND: 'does not exist',
};

/** A stream that is tombstoned, archived or missing where the operation needs it live. */
export class StreamStateError extends PostboxError {
  readonly streamId: string;

  constructor(code: StreamStateErrorCode, streamId: string, options?: ErrorOptions) {
    super(code, `Stream ${JSON.stringify(streamId)} ${explanations[code]}.`, { streamId }, options);
    this.streamId = streamId;
  }
}
