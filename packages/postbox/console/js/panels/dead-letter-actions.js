import { api } from '../api.js';
import { clearMessage, showError, showInfo } from '../messages.js';

const enc = encodeURIComponent;

/** Retries or discards a dead letter; says how it went, and refreshes everything. */
export async function actOnDeadLetter(context, id, action) {
  try {
    await api('POST', `api/dead-letters/${enc(id)}/${action}`, {});
    clearMessage('dead-letter-action');
    showInfo(action === 'retry' ? `Dead letter ${id} sent back to its group` : `Dead letter ${id} discarded`);
    return true;
  } catch (error) {
    showError(error, action === 'retry' ? 'Retrying the dead letter' : 'Discarding the dead letter', 'dead-letter-action');
    return false;
  } finally {
    await context.refreshAll();
  }
}
