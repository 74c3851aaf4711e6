// Reads from the server's routes, with the API key (if any) on every request.
// The key lives in sessionStorage: pasted once, kept for this browser tab's session.

const KEY = "agentplane.apiKey";
export const auth = new EventTarget(); // "needed" (401) and "changed"

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setApiKey(value) {
  value = (value || "").trim();
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
  auth.dispatchEvent(new Event("changed"));
}

export function headers() {
  const key = apiKey();
  return key ? { "X-API-Key": key } : {};
}

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// The message of any family's error body (google.rpc.Status, {detail}, {error}, {ok:false}).
export function errorMessage(body, status) {
  if (body && typeof body === "object") {
    if (typeof body.message === "string") return body.message;
    if (typeof body.detail === "string") return body.detail;
    const err = body.error;
    if (typeof err === "string") return err;
    if (err && typeof err.message === "string") return err.message;
  }
  return `HTTP ${status}`;
}

export async function get(path, params) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  let resp;
  try {
    resp = await fetch(url, { headers: headers(), cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, "the server cannot be reached; it may be restarting", null);
  }
  const text = await resp.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!resp.ok) {
    const error = new ApiError(resp.status, errorMessage(body, resp.status), body);
    if (resp.status === 401) auth.dispatchEvent(new CustomEvent("needed", { detail: error }));
    throw error;
  }
  return body;
}

// The console's read RPCs (ConsoleService, /v1/console/...).
export const consoleApi = {
  overview: (params) => get("/v1/console/overview", params),
  sessions: (params) => get("/v1/console/sessions", params),
  timeline: (kind, id, params) =>
    get(`/v1/console/timelines/${encodeURIComponent(kind)}/${encodeURIComponent(id)}`, params),
  queue: (params) => get("/v1/console/queue", params),
  taskRuns: (taskId, params) => get(`/v1/console/queue/tasks/${encodeURIComponent(taskId)}/runs`, params),
  channels: (params) => get("/v1/console/channels", params),
  channel: (id) => get(`/v1/console/channels/${encodeURIComponent(id)}`),
  messages: (id, params) => get(`/v1/console/channels/${encodeURIComponent(id)}/messages`, params),
  rules: (params) => get("/v1/console/rules", params),
  verdicts: (ruleId, params) => get(`/v1/console/rules/${encodeURIComponent(ruleId)}/verdicts`, params),
};
