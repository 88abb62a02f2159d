import { defaults } from '../config/defaults.js';
import { ValidationError } from '../errors/postbox-error.js';
import type { MessageHeaders } from '../log/message.js';
import type { OutgoingMessage } from '../outbox/outgoing-message.js';
import { checkName, prepareMessage, type ValidationLimits } from '../outbox/validate.js';
import { type CronTicks, cronTicks } from './cron.js';
import { type MissedPolicy, missedPolicies } from './missed-ticks.js';

/** The message a schedule appends on each tick; its id and delivery time are the tick's. */
export type ScheduleMessage<P = unknown> = Omit<OutgoingMessage<P>, 'id' | 'deliverAt' | 'delayMs' | 'payload'> & {
  /** JSON null when left out. */
  payload?: P;
};

export interface ScheduleDefinition<P = unknown> {
  /** Names the schedule: defining it again under this name changes it. */
  name: string;
  /** Five fields (minute to day of week), six with seconds first, or a nickname such as `@hourly`. */
  cron: string;
  /** The IANA time zone the expression is read in; defaults.timekeeper.timeZone (UTC) by default. */
  timeZone?: string;
  message: ScheduleMessage<P>;
  /**
   * Ticks found long past (nothing ran at their time): `skip` appends none, `last` the latest,
   * `all` each of them up to defaults.timekeeper.maxCatchUpTicks. defaults.timekeeper.missed by default.
   */
  missed?: MissedPolicy;
}

/** Headers every tick's message carries: the schedule's name and the tick's time. */
export const tickHeaders = ['schedule', 'scheduledFor'] as const;

/** A definition checked, with its message serialised as the schedule stores it. */
export interface CheckedSchedule {
  name: string;
  cron: CronTicks;
  missed: MissedPolicy;
  topic: string;
  type: string;
  key: string | null;
  payloadJson: string;
  headers: MessageHeaders;
}

function badOption(message: string, option: string): ValidationError {
  return new ValidationError('POSTBOX_ERR_BAD_OPTION', message, { option });
}

function checkMissed(missed: unknown): MissedPolicy {
  if (!missedPolicies.includes(missed as MissedPolicy)) {
    throw new ValidationError(
      'POSTBOX_ERR_BAD_SCHEDULE',
      `missed must be one of ${missedPolicies.join(', ')} (got ${JSON.stringify(missed) ?? typeof missed}).`,
      {
        field: 'missed',
      },
    );
  }
  return missed as MissedPolicy;
}

/**
 * Checks a definition as the outbox checks a message, with room for the tick headers, before
 * anything is written; throws a ValidationError whose details name the field.
 */
export function checkSchedule(definition: ScheduleDefinition, limits: ValidationLimits): CheckedSchedule {
  if (typeof definition !== 'object' || definition === null) throw badOption('A schedule must be an object.', 'schedule');
  const name = checkName('name', definition.name, defaults.maxNameLength);
  const cron = cronTicks(definition.cron, definition.timeZone ?? defaults.timekeeper.timeZone);
  const missed = checkMissed(definition.missed ?? defaults.timekeeper.missed);
  const message = definition.message;
  if (typeof message !== 'object' || message === null)
    throw badOption(`Schedule ${name} needs a message: { topic, type, payload }.`, 'message');
  for (const field of ['id', 'deliverAt', 'delayMs'] as const) {
    if ((message as Record<string, unknown>)[field] !== undefined) {
      throw badOption(`A schedule's message takes no ${field}: each tick has its own id and falls due at its time.`, field);
    }
  }
  const custom = message.headers ?? {};
  for (const header of tickHeaders) {
    if (typeof custom === 'object' && Object.hasOwn(custom, header)) {
      throw new ValidationError('POSTBOX_ERR_BAD_HEADER', `Header "${header}" is set by Postbox on each tick's message.`, { header });
    }
  }
  // Checked with the tick headers in, so that a tick's message obeys every limit a message has.
  const sample: Record<(typeof tickHeaders)[number], string> = { schedule: name, scheduledFor: new Date(0).toISOString() };
  const prepared = prepareMessage({ ...message, payload: message.payload ?? null, headers: { ...custom, ...sample } }, limits);
  const headers = JSON.parse(prepared.headersJson) as MessageHeaders;
  for (const header of tickHeaders) delete headers[header];
  return {
    name,
    cron,
    missed,
    topic: prepared.topic,
    type: prepared.type,
    key: prepared.key,
    payloadJson: prepared.payloadJson,
    headers,
  };
}
