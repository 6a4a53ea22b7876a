// Calls to the service's public API, as any client makes them. The page's login is an
// HttpOnly session cookie; the header below tells the service that a same-origin page
// made the call (another site's page cannot set it without a CORS grant we never give).

const PAGE_HEADER = { "X-StepAudio-Page": "1" };
const BASE = new URL("..", location.href); // the service's root, wherever /ui is mounted

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || body?.detail || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code || "";
  }
}

export function url(path) {
  return new URL(path.replace(/^\//, ""), BASE);
}

async function failed(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON: the status says enough */
  }
  if (response.status === 401) location.assign(url(`login?next=${encodeURIComponent(location.pathname + location.search + location.hash)}`));
  return new ApiError(response.status, body);
}

export async function call(path, { method = "GET", body, json, signal } = {}) {
  const headers = { ...PAGE_HEADER, Accept: "application/json" };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const response = await fetch(url(path), { method, body, headers, signal, credentials: "same-origin" });
  if (!response.ok) throw await failed(response);
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

/** POST a form and read its server-sent events: onEvent(name, data) for each. */
export async function stream(path, form, onEvent, signal) {
  const response = await fetch(url(path), {
    method: "POST",
    body: form,
    headers: { ...PAGE_HEADER, Accept: "text/event-stream" },
    credentials: "same-origin",
    signal,
  });
  if (!response.ok) throw await failed(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

/** A WebSocket to one of the service's realtime routes (the cookie goes with it). */
export function socket(path) {
  const address = url(path);
  address.protocol = address.protocol === "https:" ? "wss:" : "ws:";
  return new WebSocket(address);
}
