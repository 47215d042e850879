// The API client of the page: every call carries the key the user typed, kept
// in sessionStorage only (gone when the browser session ends; never a cookie,
// so no other site can make the browser use it).

const KEY = "runplane.key";

export const key = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Called with the error when the server refuses the key (401): the page goes
// back to its login form and shows the server's message.
export const onUnauthorized = { handler: null };

function headers(extra = {}) {
  return { Authorization: `Bearer ${key.get() || ""}`, ...extra };
}

// crypto.randomUUID needs a secure context; getRandomValues does not.
export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function errorOf(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || "request failed";
  try {
    const body = await response.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch {
    // not JSON: keep the HTTP status
  }
  const error = new ApiError(response.status, code, message);
  if (response.status === 401 && onUnauthorized.handler) onUnauthorized.handler(error);
  return error;
}

export async function request(method, path, { body, signal, extraHeaders } = {}) {
  const extra = { ...(extraHeaders || {}) };
  if (body !== undefined) extra["Content-Type"] = "application/json";
  // A repeated click or a retried request does the operation once.
  if (method !== "GET") extra["Idempotency-Key"] = randomId();
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(extra),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (exc) {
    if (exc.name === "AbortError") throw exc;
    throw new ApiError(0, "unreachable", "the server did not answer");
  }
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return null;
  return response.json();
}

export const get = (path, opts) => request("GET", path, opts);

export function query(params) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v !== undefined && v !== null && v !== "") q.append(name, v);
    }
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

// Lines of a streamed body, as they arrive.
async function* lines(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const parts = buffer.split(/\r\n|\r|\n/);
      buffer = parts.pop();
      yield* parts;
    }
    if (buffer) yield buffer;
  } finally {
    reader.releaseLock();
  }
}

// NDJSON objects of a streamed GET (the logs follow): blank keepalives skipped.
export async function* ndjson(path, signal) {
  let response;
  try {
    response = await fetch(path, { headers: headers(), signal });
  } catch (exc) {
    if (exc.name === "AbortError") return;
    throw new ApiError(0, "unreachable", "the server did not answer");
  }
  if (!response.ok) throw await errorOf(response);
  for await (const line of lines(response)) {
    if (line.trim()) yield JSON.parse(line);
  }
}

// Server-Sent Events frames of one response: {id, event, data}.
export async function* sseFrames(response) {
  let frame = { id: null, event: "message", data: [] };
  for await (const line of lines(response)) {
    if (line === "") {
      if (frame.data.length || frame.id !== null) {
        yield { id: frame.id, event: frame.event, data: frame.data.join("\n") };
      }
      frame = { id: null, event: "message", data: [] };
      continue;
    }
    if (line.startsWith(":")) continue; // keepalive comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") frame.id = value;
    else if (field === "event") frame.event = value;
    else if (field === "data") frame.data.push(value);
  }
}
