import type { ParkedMessage } from '../../parking/parked-message.js';
import { redactUrl } from '../../sql/connection-secrets.js';
import { positionJson } from './position-json.js';

/** A parked message in a list: where it is and how its retries stand, without its payload or headers. */
export function parkedJson(parked: ParkedMessage) {
  const { payload: _payload, headers: _headers, ...summary } = parked;
  return {
    ...summary,
    position: positionJson(parked.position),
    errorMessage: parked.errorMessage === null ? null : redactUrl(parked.errorMessage),
  };
}
