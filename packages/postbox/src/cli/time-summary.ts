import type { TimeStatus } from '../time/time-status.js';

function seconds(value: number): string {
  return `${value < 10 ? value.toFixed(1) : Math.round(value)}s`;
}

/** One line for `postbox status`: what waits for its time, how overdue, and who keeps time. */
export function renderTimeSummary(status: TimeStatus): string {
  const overdue = status.overdueSeconds > 0 ? `, overdue ${seconds(status.overdueSeconds)}` : '';
  const next = status.nextDueAt ? `, next due ${status.nextDueAt.toISOString()}` : '';
  const keeper = status.timekeeper ? `${status.timekeeper.owner} since ${status.timekeeper.since.toISOString()}` : 'none running';
  return (
    `Scheduled: ${status.scheduledMessages} waiting (${status.dueMessages} due${overdue}${next}); ` +
    `schedules: ${status.activeSchedules} active, ${status.pausedSchedules} paused; timekeeper: ${keeper}`
  );
}
