// The console's only way to the gateway: same-origin fetches of the admin API and of /ui/session.
// The admin key is never stored here: after login the browser holds an HttpOnly session cookie, and
// every admin call carries the X-SMG-Console header, which the gateway requires next to the cookie
// (a cross-site form cannot send it).

// The page is served at <root>/ui/; the admin API lives at <root>/.
const UI_BASE = new URL(".", document.baseURI);
const API_BASE = new URL("..", UI_BASE);

/** An answer that was not 2xx: the OpenAI-shaped error's fields, or the HTTP status alone. */
export class ApiError extends Error {
  constructor(status, message, code = null, param = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

let onUnauthorized = null;

/** Called (once per 401) when an admin call is refused for want of a valid session. */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

async function send(url, method, body) {
  const headers = { "X-SMG-Console": "1", Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, "the gateway did not answer (" + (err && err.message ? err.message : err) + ")");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = data && typeof data === "object" ? data.error : null;
    const message =
      error && typeof error.message === "string" ? error.message : `HTTP ${response.status} ${response.statusText}`.trim();
    throw new ApiError(response.status, message, error ? error.code ?? null : null, error ? error.param ?? null : null);
  }
  return data;
}

/** Call the admin API: ``path`` is relative to the gateway root ("workers", "mcp/servers/x"). */
export async function api(method, path, body) {
  try {
    return await send(new URL(path, API_BASE), method, body);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && onUnauthorized) {
      onUnauthorized(err);
    }
    throw err;
  }
}

/** Encode one path segment (a worker id, a server or tool name). */
export function seg(value) {
  return encodeURIComponent(String(value));
}

/** GET /ui/session: ``{authenticated, key_required}``. */
export function getSession() {
  return send(new URL("session", UI_BASE), "GET");
}

/** POST /ui/session with the admin key; throws ApiError (401 invalid_api_key, 403 forbidden). */
export function login(key) {
  return send(new URL("session", UI_BASE), "POST", { key });
}

/** DELETE /ui/session: the gateway forgets the session and clears the cookie. */
export function logout() {
  return send(new URL("session", UI_BASE), "DELETE");
}
