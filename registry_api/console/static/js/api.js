// The API as the console uses it: the bearer token of the logged-in org on every call, errors as ApiError
// carrying the API's stable {code, message, field}, and writes followed from 202 to confirmed.

const TOKEN_KEY = "dirchain.token";
const ME_KEY = "dirchain.me";
const OPERATION_POLL_MS = 500;
const OPERATION_TIMEOUT_MS = 180_000;

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || `HTTP_${status}`;
    this.field = body?.field || null;
    this.body = body;
  }
}

// The token lives in sessionStorage: gone when the tab closes, never in a cookie (so no CSRF to defend against).
export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  me: () => JSON.parse(sessionStorage.getItem(ME_KEY) || "null"),
  set(token, me) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(ME_KEY, JSON.stringify(me));
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(ME_KEY);
  },
  hasRole: (role) => (session.me()?.roles || []).includes(role),
};

function url(path, query) {
  const u = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) u.searchParams.append(key, v);
  }
  return u;
}

export async function api(method, path, { query, body, headers = {}, token = session.token(), raw = false } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path, query), init);
  } catch (exc) {
    throw new ApiError(0, { code: "NETWORK", message: `the API did not answer: ${exc.message}` });
  }
  if (raw && response.ok) return response;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text.slice(0, 300) };
  }
  if (!response.ok) {
    if (response.status === 401 && token === session.token()) {
      session.clear();
      window.dispatchEvent(new Event("dirchain:logout"));
    }
    throw new ApiError(response.status, data);
  }
  return data;
}

export const get = (path, query, options = {}) => api("GET", path, { ...options, query });

// A random idempotency key. crypto.randomUUID exists only in secure contexts (https, localhost); getRandomValues
// everywhere, so a console served over plain http on an intranet host still works.
export function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Every write answers 202 with an operation; an Idempotency-Key makes a double click or a retry one write.
export const post = (path, body, { idempotencyKey = newKey(), ...options } = {}) =>
  api("POST", path, { ...options, body, headers: { "Idempotency-Key": idempotencyKey, ...(options.headers || {}) } });

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Poll `probe()` every `pollMs` until it answers something truthy (returned: e.g. the mirror has indexed a write),
// time is up or `alive()` turns false (the page was left); then null.
export async function untilMirrored(probe, { timeoutMs = 30_000, pollMs = 300, alive = () => true } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (alive() && Date.now() < deadline) {
    const found = await probe();
    if (found) return found;
    await sleep(pollMs);
  }
  return null;
}

// Poll GET /v1/operations/{id} until confirmed (returns it) or failed (throws with the decoded reason).
export async function followOperation(operationId, onUpdate = () => {}) {
  const deadline = Date.now() + OPERATION_TIMEOUT_MS;
  let last = null;
  while (Date.now() < deadline) {
    const op = await get(`/v1/operations/${encodeURIComponent(operationId)}`);
    if (!last || op.status !== last.status) onUpdate(op);
    last = op;
    if (op.status === "confirmed") return op;
    if (op.status === "failed") {
      const reason = op.error || {};
      throw new ApiError(409, { code: reason.code || "OPERATION_FAILED", message: reason.message || "the write failed on-chain", field: reason.field });
    }
    await sleep(OPERATION_POLL_MS);
  }
  throw new ApiError(504, { code: "OPERATION_TIMEOUT", message: `operation ${operationId} is still ${last?.status}` });
}

// Download a file route that needs the bearer token (a plain link would go without it): fetch it, then save the
// blob under the name of its Content-Disposition (or `fallbackName`). Returns that name.
export async function download(path, query, fallbackName = "download") {
  const response = await api("GET", path, { query, raw: true, headers: { Accept: "*/*" } });
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = /filename="?([^";]+)"?/.exec(disposition)?.[1] || fallbackName;
  const href = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
  return name;
}

export const DEVICE_STATUSES = ["planned", "active", "suspended", "replaced", "retired"]; // the contract's enum

let references = null; // {token, promise}: the reference lists change rarely; fetched once per log-in

// Code rules (types), member orgs and districts: {rules, members, districts, districtName(code)}.
export function loadReferences() {
  const token = session.token();
  if (!references || references.token !== token) {
    const promise = Promise.all([
      get("/v1/code-rules", { limit: 1000 }),
      get("/v1/members", { limit: 1000 }),
      get("/v1/districts"),
    ]).then(([rules, members, districts]) => {
      const names = new Map(districts.data.map((d) => [d.code, d.name]));
      return {
        rules: rules.data,
        members: members.data,
        districts: districts.data,
        districtName: (code) => (names.has(code) ? `${names.get(code)} ${code}` : String(code)),
      };
    });
    promise.catch(() => (references = null)); // a failed load is tried again next time
    references = { token, promise };
  }
  return references.promise;
}
