import type { Schedule } from '../../time/schedule-store.js';
import type { ScheduledMessage } from '../../time/scheduled-messages.js';

/** A message waiting for its time, in a list: what it is and when it falls due, without its payload or headers. */
export function scheduledJson(message: ScheduledMessage) {
  const { payload: _payload, headers: _headers, ...summary } = message;
  return summary;
}

/** A schedule: its expression, state and ticks, and what each tick appends, without the payload or headers. */
export function scheduleJson(schedule: Schedule) {
  const { payload: _payload, headers: _headers, ...message } = schedule.message;
  return { ...schedule, message };
}
