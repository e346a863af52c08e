// The one client of the gateway REST API (docs/api.md): bearer token from sessionStorage,
// JSON errors turned into ApiError so pages can say what went wrong.

const TOKEN_KEY = "storesense.token";
const BASE = "/api/v1";

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Query string from an object, leaving out null, undefined and empty values. */
export function query(params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

async function request(path, params, init = {}) {
  const headers = { ...(init.headers || {}) };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(`${BASE}${path}${query(params)}`, { ...init, headers });
  } catch (err) {
    throw new ApiError(0, "network", String(err && err.message ? err.message : err));
  }
  if (!res.ok) {
    let body = {};
    try {
      body = await res.json();
    } catch {
      body = {};
    }
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || "");
    // A token revoked or expired mid-session: the shell brings back the sign-in form.
    if (res.status === 401) window.dispatchEvent(new CustomEvent("storesense:unauthorized"));
    throw new ApiError(res.status, body.error || String(res.status), detail);
  }
  return res;
}

export async function apiGet(path, params) {
  const res = await request(path, params);
  return res.json();
}

/** PUT or POST a JSON body; the answer's JSON. */
export async function apiSend(method, path, body) {
  const res = await request(path, {}, {
    method, body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
  return res.json();
}

export async function apiBlob(path, params) {
  const res = await request(path, params);
  return res.blob();
}

/** Resolve to the value, or to `fallback` when the API answers with one of `statuses`. */
export async function orWhen(promise, statuses, fallback) {
  try {
    return await promise;
  } catch (err) {
    if (err instanceof ApiError && statuses.includes(err.status)) return fallback(err);
    throw err;
  }
}
