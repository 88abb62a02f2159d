import type { LogPosition } from '../../log/position.js';

/** A position as JSON: both parts as decimal strings, since they outgrow a JavaScript number. */
export function positionJson(position: LogPosition): { transactionId: string; globalPosition: string } {
  return { transactionId: position.transactionId.toString(), globalPosition: position.globalPosition.toString() };
}
