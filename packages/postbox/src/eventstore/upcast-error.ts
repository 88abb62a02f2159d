import { PostboxError } from '../errors/postbox-error.js';

/** An upcaster threw on a stored event; not retriable (projections dead-letter the event). */
export class UpcastError extends PostboxError {
  constructor(type: string, fromVersion: number, eventId: string, options?: ErrorOptions) {
    super(
      'POSTBOX_ERR_UPCAST',
      `Upcasting event ${eventId} of type ${JSON.stringify(type)} from schema version ${fromVersion} failed: ${reason(options?.cause)}`,
      { type, fromVersion, eventId },
      options,
    );
  }
}

function reason(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
