/**
 * The API client of the dashboard: JSON requests with the API token kept in sessionStorage.
 * @module
 */

const TOKEN_KEY = "orchestrator.apiToken";

/** An API answer that is not 2xx: `status`, and `code`, `field` from `{error}`. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {{code?: string, message?: string, field?: string}} error
   */
  constructor(status, error) {
    super(error.message ?? `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = error.code ?? "http_error";
    this.field = error.field ?? null;
  }
}

/** @returns {string | null} the token of this tab, if signed in. */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** @param {string | null} value the token to keep, or null to forget it. */
export function setToken(value) {
  if (value === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, value);
}

/**
 * A JSON request to the API.
 * @param {string} method
 * @param {string} path e.g. `/api/v1/jobs`
 * @param {unknown} [body]
 * @param {string} [with_token] a token to use instead of the stored one
 * @returns {Promise<any>} the parsed body (null for 204)
 * @throws {ApiError} for a non-2xx answer
 */
export async function api(method, path, body, with_token) {
  const headers = { authorization: `Bearer ${with_token ?? token() ?? ""}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const error = new ApiError(res.status, json?.error ?? { message: text || res.statusText });
    if (res.status === 401) dispatchEvent(new CustomEvent("unauthorized"));
    throw error;
  }
  return json;
}

/** GET shorthand. @param {string} path */
export const get = (path) => api("GET", path);
/** POST shorthand. @param {string} path @param {unknown} [body] */
export const post = (path, body) => api("POST", path, body);
