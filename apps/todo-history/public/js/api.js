// The JSON request, its errors and the query string are the operations console's (mounted at /ops/).
// The console's token is never sent with the app's own requests.
import { safeStorage } from '/ops/assets/js/api.js';

export { query, requestJson as api } from '/ops/assets/js/api.js';

const userKey = 'todo-history.user';
export const defaultUser = 'alice';

let user = safeStorage(() => localStorage.getItem(userKey))?.trim() || defaultUser;

export function currentUser() {
  return user;
}

export function setUser(name) {
  const trimmed = name.trim();
  if (!trimmed) return;
  user = trimmed;
  safeStorage(() => localStorage.setItem(userKey, trimmed));
}

/** A list answer may be a bare array or wrapped as { items } (or another single array property). */
export function listOf(data, ...keys) {
  if (Array.isArray(data)) return data;
  if (data && typeof data === 'object') {
    for (const key of ['items', ...keys]) if (Array.isArray(data[key])) return data[key];
  }
  return [];
}
