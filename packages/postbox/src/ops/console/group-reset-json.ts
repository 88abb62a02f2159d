import type { GroupReset } from '../../consumers/reset.js';
import { positionJson } from './position-json.js';

/** A reset's report as JSON: positions as strings. */
export function groupResetJson(reset: GroupReset) {
  return {
    ...reset,
    partitions: reset.partitions.map((partition) => ({ ...partition, from: positionJson(partition.from), to: positionJson(partition.to) })),
  };
}
