// The live event feed: `/v1/events/stream` read with fetch (EventSource cannot
// send the Authorization header), reconnecting after a drop with the
// Last-Event-ID of the last event seen, so nothing made meanwhile is missed.

import { ApiError, key, onUnauthorized, sseFrames } from "./api.js";

const RETRY_MS = [500, 1000, 2000, 4000];
const RECENT = 50; // events kept for the list page's "Recent events"

// Stream entry ids (`<ms>-<seq>`) in stream order; both parts fit a Number.
function compareIds(a, b) {
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am - bm || as - bs;
}

export class Feed {
  constructor() {
    this.lastEventId = null;
    this.listeners = new Set();
    this.stateListeners = new Set();
    this.recent = []; // newest first, for the list page's "Recent events"
    this.controller = null;
    this.state = "off";
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onState(listener) {
    this.stateListeners.add(listener);
    listener(this.state);
  }

  setState(state, detail = "") {
    this.state = state;
    for (const listener of this.stateListeners) listener(state, detail);
  }

  start() {
    if (this.controller) return;
    this.controller = new AbortController();
    this.run(this.controller.signal);
  }

  // Signing out forgets what this key saw: the next key starts afresh and
  // never sees the previous one's events.
  stop() {
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.lastEventId = null;
    this.recent = [];
    this.setState("off");
  }

  async run(signal) {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.connect(signal);
        failures = 0; // it was open: the next try is quick
      } catch (exc) {
        if (signal.aborted) return;
        if (exc instanceof ApiError && (exc.status === 401 || exc.status === 403)) {
          this.setState("error", exc.message);
          return; // a refused key does not get better by retrying
        }
        failures += 1;
      }
      if (signal.aborted) return;
      this.setState("reconnecting");
      await sleep(RETRY_MS[Math.min(failures, RETRY_MS.length - 1)], signal);
    }
  }

  async connect(signal) {
    const headers = { Authorization: `Bearer ${key.get() || ""}`, Accept: "text/event-stream" };
    if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
    const response = await fetch("/v1/events/stream", { headers, signal, cache: "no-store" });
    if (!response.ok) {
      let body = {};
      try {
        body = (await response.json()).error || {};
      } catch {
        // keep the status
      }
      const error = new ApiError(response.status, body.code, body.message || "stream refused");
      if (response.status === 401 && onUnauthorized.handler) onUnauthorized.handler(error);
      throw error;
    }
    this.setState("live");
    this.emit({ kind: "open" });
    for await (const frame of sseFrames(response)) {
      if (frame.id) this.lastEventId = frame.id;
      if (frame.event === "resync") {
        // Events were trimmed past our position: go on from the server's
        // resume point, and have the pages reload their state.
        const data = JSON.parse(frame.data || "{}");
        if (data.resume_id) this.lastEventId = data.resume_id;
        this.emit({ kind: "resync" });
        continue;
      }
      if (frame.event === "runplane.lagging") continue; // the stream closes; we resume
      let envelope;
      try {
        envelope = JSON.parse(frame.data);
      } catch {
        continue;
      }
      const event = { kind: "event", id: frame.id, type: frame.event, envelope };
      this.recent.unshift(event);
      this.recent.length = Math.min(this.recent.length, RECENT);
      this.emit(event);
    }
  }

  // The newest events read with `GET /v1/events?order=desc`, merged with what the
  // stream brought meanwhile: by entry id, so one seen both ways is listed once,
  // and in stream order, so a late answer cannot push newer events down.
  remember(events) {
    const known = new Set(this.recent.map((e) => e.id));
    for (const event of events) if (!known.has(event.id)) this.recent.push(event);
    this.recent.sort((a, b) => compareIds(b.id, a.id));
    this.recent.length = Math.min(this.recent.length, RECENT);
  }

  emit(event) {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (exc) {
        console.error(exc);
      }
    }
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export const feed = new Feed();
