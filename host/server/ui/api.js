// Calls to the public /api/v1, with the bearer token kept in this browser
// session. Every failure becomes an ApiError whose message a person can act on.

const KEY = "weir-token";

export function token() {
  return sessionStorage.getItem(KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// `fetch` failed outright: no answer from the server at all.
export const UNREACHABLE = "unreachable";

// Calls `method path` with `body` (an object is sent as JSON); returns the
// parsed JSON answer (null for 204).
export async function call(method, path, body, type) {
  const headers = {};
  const t = token();
  if (t) headers["Authorization"] = `Bearer ${t}`;
  let payload = body;
  if (body !== undefined && !(body instanceof Blob) && typeof body !== "string") {
    payload = JSON.stringify(body);
    type = "application/json";
  }
  if (type) headers["Content-Type"] = type;
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, UNREACHABLE,
      `Cannot reach the Weir server at ${location.host} (${e.message}). Is \`weir serve\` still running?`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: handled below */ }
  if (!response.ok) {
    const code = json && json.code || `http_${response.status}`;
    let message = json && json.message || `${method} ${path} answered ${response.status} ${response.statusText}`;
    if (response.status === 401) message += " (enter the server's token at the top right)";
    throw new ApiError(response.status, code, message);
  }
  return json;
}

export const get = (path) => call("GET", path);
export const post = (path, body, type) => call("POST", path, body === undefined ? {} : body, type);
