import { deadLetterCounts } from '../deadletters/dead-letter-store.js';
import { plural } from '../text/plural.js';
import type { DoctorCheck } from './doctor-check.js';

/** Dead letters that wait: pending ones wait for a person, retrying ones for their group to take them again. */
export const deadLettersCheck: DoctorCheck = {
  check: 'dead-letters',
  title: 'dead letters',
  needsSchema: true,
  async run({ db }) {
    const counts = await deadLetterCounts(db);
    const total = counts.reduce((sum, row) => sum + row.count, 0);
    if (total === 0) return { verdict: 'ok', finding: 'no dead letter waits' };
    return {
      verdict: 'warn',
      finding: `${plural(total, 'dead letter')} wait${total === 1 ? 's' : ''}: ${counts.map((row) => `${row.group} ${row.count} ${row.status}`).join(', ')}`,
      fix: '`postbox dead-letters list` shows why each failed; then `postbox dead-letters retry --all` or `postbox dead-letters discard --all` (narrow with --group)',
    };
  },
};
