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
  POSTBOX_ERR_DUPLICATE_ID: { retriable: false, summary: 'A message id chosen by the caller is already in the log.' },
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
  POSTBOX_ERR_GROUP_PARTITIONS_MISMATCH: {
    retriable: false,
    summary: 'The consumer group already exists with another number of partitions; the message names the safe way to change it.',
  },
  POSTBOX_ERR_LEASE_LOST: {
    retriable: true,
    summary: 'Another process took over the consumer group; this batch was not committed.',
  },
  POSTBOX_ERR_CONSUMER_STATE: { retriable: false, summary: 'The consumer cannot do that in its current state.' },
  POSTBOX_ERR_HANDLER_FAILED: { retriable: true, summary: 'A message handler threw something that is not an Error.' },
  POSTBOX_ERR_HANDLER_TIMEOUT: { retriable: true, summary: 'A message handler did not finish within its timeout.' },
  POSTBOX_ERR_DECODE: { retriable: false, summary: 'A message could not be decoded; it goes to dead letters at once.' },
  POSTBOX_ERR_DEAD_LETTER_NOT_FOUND: { retriable: false, summary: 'No dead letter has that id.' },
  POSTBOX_ERR_ROUTER_STATE: { retriable: false, summary: 'The router cannot do that in its current state.' },
  POSTBOX_ERR_USAGE: { retriable: false, summary: 'A command-line flag or argument is missing or invalid.' },
  POSTBOX_ERR_CONNECTION: { retriable: true, summary: 'The database could not be reached.' },
  POSTBOX_ERR_GROUP_BUSY: { retriable: true, summary: 'Another process holds the consumer group.' },
  POSTBOX_ERR_MESSAGE_NOT_FOUND: { retriable: false, summary: 'No committed message in the log has that id.' },
  POSTBOX_ERR_MESSAGE_NOT_IN_GROUP: { retriable: false, summary: 'The message is of a topic the consumer group does not read.' },
  POSTBOX_ERR_DATABASE: { retriable: false, summary: 'The database refused a statement; the message carries its SQLSTATE.' },
  POSTBOX_ERR_OUTPUT: { retriable: false, summary: 'Standard output closed before the command finished.' },
  POSTBOX_ERR_UNEXPECTED: { retriable: false, summary: 'An unexpected failure; the message says what happened.' },
  POSTBOX_ERR_CLOSED: { retriable: false, summary: 'The Postbox instance is closed.' },
  POSTBOX_ERR_MISSING_PEER: {
    retriable: false,
    summary: 'An optional part of Postbox needs a package that is not installed; the message names the install command.',
  },
  POSTBOX_ERR_CONCURRENCY: {
    retriable: true,
    summary: 'The stream is not at the expected version: another writer appended first. Reload and decide again.',
  },
  POSTBOX_ERR_STREAM_DELETED: { retriable: false, summary: 'The stream is tombstoned: it takes no more events.' },
  POSTBOX_ERR_STREAM_ARCHIVED: { retriable: false, summary: 'The stream is archived: restore it before appending.' },
  POSTBOX_ERR_STREAM_NOT_FOUND: { retriable: false, summary: 'No stream has that id.' },
  POSTBOX_ERR_UPCAST: { retriable: false, summary: 'An upcaster failed on a stored event.' },
  POSTBOX_ERR_PROJECTION_NOT_FOUND: { retriable: false, summary: 'No projection has that name.' },
  POSTBOX_ERR_PROJECTION_STATE: { retriable: false, summary: 'The projection cannot do that in its current state.' },
  POSTBOX_ERR_TRANSACTION_IDS_BEHIND: {
    retriable: false,
    summary:
      'The log holds transaction ids at or above the next one this server assigns (a restore or cut-over): readers refuse until `postbox recover-after-restore` has run.',
  },
  POSTBOX_ERR_RECOVERY_BLOCKED: {
    retriable: true,
    summary: 'Recovery after a restore must wait for an open transaction that began before it, or that holds a lock on the log.',
  },
  POSTBOX_ERR_BAD_REQUEST: {
    retriable: false,
    summary: 'An HTTP request to the operations console is malformed: a body that is not JSON, or a missing or invalid parameter.',
  },
  POSTBOX_ERR_UNAUTHORIZED: {
    retriable: false,
    summary: 'A console route that changes state needs the header Authorization: Bearer <token>, and the request had none or a wrong one.',
  },
  POSTBOX_ERR_CONSOLE_UNGUARDED: {
    retriable: false,
    summary:
      'The operations console would change state on a non-loopback address without a token: give it a token, make it read-only, or listen on loopback.',
  },
  POSTBOX_ERR_CONSOLE_READ_ONLY: {
    retriable: false,
    summary: 'The operations console is read-only (it has no token and listens beyond loopback): it changes nothing.',
  },
  POSTBOX_ERR_BAD_DELIVERY_TIME: {
    retriable: false,
    summary:
      'A delivery time is invalid: deliverAt is not a valid Date, delayMs is not a number of milliseconds from 0, or both are given.',
  },
  POSTBOX_ERR_BAD_SCHEDULE: {
    retriable: false,
    summary: "A schedule's cron expression, time zone or missed-tick policy is invalid; the message names the field.",
  },
  POSTBOX_ERR_SCHEDULE_NOT_FOUND: { retriable: false, summary: 'No schedule has that name.' },
  POSTBOX_ERR_PARKED_NOT_FOUND: {
    retriable: false,
    summary: 'No parked message has that id, or the group has nothing parked under that key.',
  },
  POSTBOX_ERR_SCHEDULED_MESSAGE_NOT_FOUND: {
    retriable: false,
    summary: 'No message with that id waits for its time: it was delivered already, cancelled before, or never scheduled.',
  },
} as const satisfies Record<string, { retriable: boolean; summary: string }>;

export type ErrorCode = keyof typeof errorCodes;
