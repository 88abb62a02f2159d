const userKey = 'todo-history.user';
export const defaultUser = 'alice';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

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

function safeStorage(fn) {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** Calls the JSON API; a non-2xx answer becomes an ApiError carrying the server's code and message. */
export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, 'NETWORK_ERROR', `Could not reach the server: ${error.message}`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) throw toApiError(response, data);
  return data;
}

function toApiError(response, data) {
  const status = response.status;
  if (data && typeof data === 'object') {
    const nested = data.error && typeof data.error === 'object' ? data.error : null;
    const code = nested?.code ?? data.code ?? `HTTP_${status}`;
    const message = nested?.message ?? data.message ?? (typeof data.error === 'string' ? data.error : response.statusText);
    return new ApiError(status, code, message || `Request failed with status ${status}`);
  }
  const snippet = typeof data === 'string' ? data.slice(0, 200) : '';
  return new ApiError(status, `HTTP_${status}`, snippet || response.statusText || `Request failed with status ${status}`);
}

/** A list answer may be a bare array or wrapped as { items } (or another single array property). */
export function listOf(data, ...keys) {
  if (Array.isArray(data)) return data;
  if (data && typeof data === 'object') {
    for (const key of ['items', ...keys]) if (Array.isArray(data[key])) return data[key];
  }
  return [];
}
