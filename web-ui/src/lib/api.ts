// Every call the UI makes goes through here: the services' public APIs behind the admin port's
// proxy (/api/control, /api/memory, /api/swapper, /api/gateway, /api/ingest, /api/crews) and the
// supervisor's own /api.
// The session cookie is HttpOnly; the CSRF token the login returned is kept for this tab and
// sent on every call (the memory API and the supervisor check it even on reads).

const CSRF_KEY = "daarion.csrf";

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

export function csrfToken(): string | null {
  return sessionStorage.getItem(CSRF_KEY);
}

export function setCsrfToken(token: string | null) {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}

/** Turns an error answer (`{"error": {"code", "message"}}`) into words for people. */
export function errorFrom(status: number, body: unknown): ApiError {
  const error = (body as { error?: { code?: string; message?: string } } | null)?.error;
  if (error?.message) return new ApiError(status, error.code ?? "error", error.message);
  if (status === 502 || status === 503) {
    return new ApiError(status, "unavailable", "The service is not reachable right now.");
  }
  return new ApiError(status, "error", `Request failed (HTTP ${status}).`);
}

/** Called when any call finds the session gone, so the app can show the login form. */
let onUnauthorized: () => void = () => {};
export function whenUnauthorized(f: () => void) {
  onUnauthorized = f;
}
/** For calls made without `raw` (uploads through XMLHttpRequest) that find the session gone. */
export function sessionLost() {
  onUnauthorized();
}

export interface Options {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
}

export async function raw(path: string, options: Options = {}): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const csrf = csrfToken();
  if (csrf) headers["X-CSRF-Token"] = csrf;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  const response = await fetch(path, {
    method: options.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body,
    credentials: "same-origin",
    signal: options.signal,
  });
  // A refused login is an answer for the login form, not a lost session.
  if (response.status === 401 && !path.endsWith("/auth/login")) onUnauthorized();
  return response;
}

export async function api<T = any>(path: string, options: Options = {}): Promise<T> {
  const response = await raw(path, options);
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) throw errorFrom(response.status, parsed);
  return parsed as T;
}

export const control = (path: string, options?: Options) => api(`/api/control${path}`, options);
export const memory = (path: string, options?: Options) => api(`/api/memory${path}`, options);
export const swapper = (path: string, options?: Options) => api(`/api/swapper${path}`, options);
export const ingest = (path: string, options?: Options) => api(`/api/ingest${path}`, options);
export const supervisor = (path: string, options?: Options) => api(`/api${path}`, options);

/** `{a: 1, b: undefined}` → `?a=1`: empty fields are left out. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
