/**
 * Every error a user can see, by stable code. `retriable` tells callers whether trying the
 * same operation again may succeed; retry logic reads only that flag.
 */
export const errorCodes = {
  POSTBOX_ERR_EMPTY_TOPIC: { retriable: false, summary: 'A message needs a non-empty topic.' },
  POSTBOX_ERR_EMPTY_TYPE: { retriable: false, summary: 'A message needs a non-empty type.' },
  POSTBOX_ERR_BAD_NAME: {
    retriable: false,
    summary: 'A topic, type, key or group name is too long or holds a character PostgreSQL cannot store.',
  },
  POSTBOX_ERR_PAYLOAD_NOT_JSON: { retriable: false, summary: 'The payload cannot be stored as JSON.' },
  POSTBOX_ERR_PAYLOAD_TOO_LARGE: { retriable: false, summary: 'The payload is over the configured size limit.' },
  POSTBOX_ERR_BAD_HEADER: { retriable: false, summary: 'A header has a bad name or value.' },
  POSTBOX_ERR_BAD_OPTION: { retriable: false, summary: 'An option passed to the library is invalid.' },
  POSTBOX_ERR_CONFIG: { retriable: false, summary: 'An environment variable holds an invalid value.' },
  POSTBOX_ERR_SCHEMA_NOT_MIGRATED: { retriable: false, summary: 'The database has no Postbox schema yet.' },
  POSTBOX_ERR_SCHEMA_OUTDATED: { retriable: false, summary: 'The database schema is older than this library.' },
  POSTBOX_ERR_SCHEMA_TOO_NEW: { retriable: false, summary: 'The database schema is newer than this library.' },
  POSTBOX_ERR_MIGRATION_CHANGED: {
    retriable: false,
    summary: 'An applied migration differs from the file this library ships.',
  },
  POSTBOX_ERR_MIGRATION_LOCK_TIMEOUT: {
    retriable: true,
    summary: 'Another process held the migration lock for too long.',
  },
  POSTBOX_ERR_GROUP_NOT_FOUND: { retriable: false, summary: 'No consumer group has that name.' },
  POSTBOX_ERR_GROUP_TOPICS_MISMATCH: {
    retriable: false,
    summary: 'The consumer group already exists with other topics.',
  },
  POSTBOX_ERR_LEASE_LOST: {
    retriable: true,
    summary: 'Another process took over the consumer group; this batch was not committed.',
  },
  POSTBOX_ERR_CONSUMER_STATE: { retriable: false, summary: 'The consumer cannot do that in its current state.' },
  POSTBOX_ERR_HANDLER_FAILED: { retriable: true, summary: 'A message handler failed.' },
  POSTBOX_ERR_CLOSED: { retriable: false, summary: 'The Postbox instance is closed.' },
} as const satisfies Record<string, { retriable: boolean; summary: string }>;

export type ErrorCode = keyof typeof errorCodes;
