// A runtime's page: its record, action buttons (confirmed in a dialog),
// operation log, health timeline, events, live logs and metrics.

import { get, query, request } from "./api.js";
import {
  clear, confirmDialog, errorBox, h, labelChips, statusBadge, table, toast, when,
} from "./dom.js";
import { feed } from "./feed.js";
import { logsPanel, metricsPanel } from "./panels.js";

const ACTIONS = ["stop", "start", "restart", "pause", "resume", "remove"];

export function showRuntime(main, runtimeId) {
  const path = `/v1/runtimes/${encodeURIComponent(runtimeId)}`;
  const controller = new AbortController();
  const signal = controller.signal;
  const title = h("div", { class: "page-head" });
  const actionError = h("div", { id: "action-error" });
  const record = h("div", { id: "record" });
  const ops = h("div", { id: "operations" });
  const health = h("div", { id: "health" });
  const events = h("ol", { class: "events", id: "runtime-events" });
  const logs = logsPanel(runtimeId);
  const metrics = metricsPanel(runtimeId);

  async function act(action) {
    const ok = await confirmDialog(`${action} ${runtimeId}?`);
    if (!ok) return;
    clear(actionError);
    try {
      const result =
        action === "remove"
          ? await request("DELETE", path)
          : await request("POST", `${path}/${action}`);
      const code = result.error_code ? ` (${result.error_code})` : "";
      toast(`${action}: ${result.outcome}${code}`);
      if (action === "remove") location.hash = "#/";
      else loadAll();
    } catch (error) {
      clear(actionError, errorBox(error));
    }
  }

  function renderRecord(r) {
    clear(
      title,
      h("h1", {}, h("a", { href: "#/", class: "back" }, "Runtimes"), " / ", r.runtime_id),
      h("span", { id: "runtime-status" }, statusBadge(r.status)),
      h("span", { class: "spacer" }),
      h("div", { class: "actions" },
        ACTIONS.map((a) =>
          h("button", {
            type: "button",
            class: a === "remove" || a === "stop" ? "danger" : "",
            "data-action": a,
            onclick: () => act(a),
          }, a))),
    );
    const rows = [
      ["Team", r.team_id], ["Status", statusBadge(r.status)], ["Driver", r.driver],
      ["Host", r.host_id || "—"], ["Health", r.engine_health || "—"], ["Version", r.version],
      ["Created", when(r.created_at)], ["Started", when(r.started_at) || "—"],
      ["Stopped", when(r.stopped_at) || "—"], ["Last operation", when(r.last_op_at) || "—"],
      ["Container", r.container_id || "—"], ["Labels", labelChips(r.labels)],
      ["Spec", h("pre", { class: "json" }, JSON.stringify(r.spec, null, 2))],
    ];
    clear(record, h("dl", { class: "kv" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
  }

  function renderOps(list) {
    clear(
      ops,
      list.length
        ? table(
            ["Time", "Op", "Outcome", "From → to", "Error", "Source", "Reason"],
            list.map((o) =>
              h("tr", { "data-op": o.op, "data-outcome": o.outcome },
                h("td", {}, when(o.started_at)), h("td", {}, o.op),
                h("td", {}, h("span", { class: `outcome ${o.outcome}` }, o.outcome)),
                h("td", {}, `${o.status_from || "—"} → ${o.status_to || "—"}`),
                h("td", {}, o.error_code ? `${o.error_code}: ${o.error_message}` : ""),
                h("td", {}, o.op_source), h("td", {}, o.reason))),
            { class: "grid" },
          )
        : h("p", { class: "muted" }, "No operations."),
    );
  }

  function renderHealth(hl) {
    const items = hl.events.map((e) =>
      h("li", { class: `health-${e.event_type}` },
        h("span", { class: "time" }, when(e.occurred_at)),
        h("span", { class: "type" }, e.event_type),
        h("span", { class: "muted" }, Object.keys(e.details).length ? JSON.stringify(e.details) : "")));
    clear(
      health,
      h("p", {}, "Summary: ", h("strong", {}, hl.engine_health || "no health event yet"),
        hl.snapshot ? ` (observed ${when(hl.snapshot.observed_at)})` : ""),
      items.length ? h("ol", { class: "timeline" }, items) : null,
    );
  }

  function eventItem(envelope, id) {
    const d = envelope.data || {};
    return h("li", { "data-event-id": id, "data-type": envelope.type },
      h("span", { class: "time" }, when(envelope.time)),
      h("span", { class: "type" }, envelope.type),
      d.status_to ? statusBadge(d.status_to) : null,
      h("span", { class: "muted" }, d.reason || ""));
  }

  async function loadAll() {
    const calls = [
      get(path, { signal }).then(renderRecord),
      get(`${path}/operations?limit=50`, { signal }).then((o) => renderOps(o.operations)),
      get(`${path}/health`, { signal }).then(renderHealth),
    ];
    for (const call of calls) {
      call.catch((error) => {
        if (error.name !== "AbortError") clear(actionError, errorBox(error));
      });
    }
    await Promise.allSettled(calls);
  }

  // The event pages run oldest first: read on (a bounded number of pages) to the newest.
  async function loadEvents() {
    try {
      let recent = [];
      let after = null;
      for (let n = 0; n < 20; n += 1) {
        const page = await get(
          `/v1/events${query({ runtime_id: runtimeId, limit: 1000, after })}`, { signal });
        recent = recent.concat(page.events).slice(-30);
        after = page.next_cursor;
        if (!after || !page.events.length) break;
      }
      clear(events, recent.reverse().map((e) => eventItem(e.event, e.id)));
    } catch (error) {
      if (error.name !== "AbortError") clear(events, errorBox(error));
    }
  }

  const unsubscribe = feed.subscribe((event) => {
    if (event.kind !== "event") {
      loadAll();
      return;
    }
    if (event.envelope.subject !== runtimeId) return;
    events.prepend(eventItem(event.envelope, event.id));
    const to = (event.envelope.data || {}).status_to;
    if (to === "removed") {
      toast(`${runtimeId} was removed`);
      location.hash = "#/";
      return;
    }
    loadAll();
    if (to === "running") logs.restart();
  });

  const section = (name, ...content) => h("section", { class: "card" }, h("h2", {}, name), content);
  clear(
    main,
    h("section", { class: "page" }, title, actionError,
      h("div", { class: "columns" },
        h("div", {}, section("Record", record), section("Health", health),
          section("Events", events)),
        h("div", {}, section("Metrics", metrics.element), section("Logs", logs.element),
          section("Operation log", ops)))),
  );
  loadAll();
  loadEvents();
  logs.start();
  metrics.start();
  // Health events change no lifecycle status, so no stream event says to re-read them.
  const healthTimer = setInterval(() => {
    get(`${path}/health`, { signal }).then(renderHealth).catch(() => {});
  }, 5000);
  return () => {
    clearInterval(healthTimer);
    controller.abort();
    unsubscribe();
    logs.stop();
    metrics.stop();
  };
}
