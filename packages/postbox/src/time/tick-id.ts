import { v5 as uuidv5 } from 'uuid';

/** The namespace of tick ids. Changing it changes every tick's id: a tick appended before would be appended again. */
const tickNamespace = 'fbb3ca5b-fa4d-4d13-b820-bdc6ca249582';

/**
 * The id of a schedule's message for one tick, the same wherever and however often it is computed:
 * the log's unique message id then keeps a tick from being appended twice, even by two processes.
 */
export function tickMessageId(schedule: string, tick: Date): string {
  return uuidv5(`${schedule}\n${tick.toISOString()}`, tickNamespace);
}
