const tokenKey = 'postbox-console.token';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }

  /** A token would help: the console has one and the request carried none, or a wrong one. */
  get needsToken() {
    return this.status === 401;
  }
}

/** Runs fn against web storage, or answers undefined where the browser refuses it (storage disabled, private mode). */
export function safeStorage(fn) {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/** The token is kept for this browser tab only. */
export function consoleToken() {
  return safeStorage(() => sessionStorage.getItem(tokenKey)) || '';
}

export function setConsoleToken(token) {
  safeStorage(() => (token ? sessionStorage.setItem(tokenKey, token) : sessionStorage.removeItem(tokenKey)));
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/**
 * Sends a JSON request and answers the parsed body. A non-2xx answer becomes an ApiError with the
 * server's code and message (`{ error: { code, message } }`), a network failure one with status 0.
 */
export async function requestJson(method, path, body, extraHeaders = {}) {
  const headers = { accept: 'application/json', ...extraHeaders };
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
  if (!response.ok) {
    const error = data && typeof data === 'object' && data.error && typeof data.error === 'object' ? data.error : {};
    const snippet = typeof data === 'string' ? data.slice(0, 200) : '';
    throw new ApiError(response.status, error.code ?? `HTTP_${response.status}`, error.message ?? (snippet || response.statusText));
  }
  return data;
}

/**
 * Calls the console's JSON API, relative to the page (so under whatever prefix it is mounted), with
 * the console token on every request that changes state.
 */
export function api(method, path, body) {
  const token = consoleToken();
  return requestJson(method, path, body, token && method !== 'GET' ? { authorization: `Bearer ${token}` } : {});
}
