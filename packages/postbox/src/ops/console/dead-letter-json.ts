import type { DeadLetter } from '../../deadletters/dead-letter-store.js';
import { redactUrl } from '../../sql/connection-secrets.js';

/** A dead letter in a list: where it came from and why it failed, without its payload, headers or stack. */
export function deadLetterSummaryJson(letter: DeadLetter) {
  const { payload: _payload, rawPayload: _raw, headers: _headers, errorStack: _stack, ...summary } = letter;
  return { ...summary, errorMessage: redactUrl(letter.errorMessage) };
}

/** One dead letter whole: the message (payload, raw bytes, headers), the error and its stack. */
export function deadLetterJson(letter: DeadLetter) {
  return {
    ...letter,
    errorMessage: redactUrl(letter.errorMessage),
    errorStack: letter.errorStack === null ? null : redactUrl(letter.errorStack),
  };
}
