// Hosts, webhooks (with their deliveries) and dead letters. Hosts and dead
// letters are admin-only: a team key gets the server's 403, shown politely.

import { get } from "./api.js";
import { age, clear, h, labelChips, problem, statusBadge, table, when } from "./dom.js";

// A page of one table, loaded now, on "Refresh", and every `everyMs` if given.
function page(main, heading, intro, load, everyMs = 0) {
  const body = h("div", { class: "card" }, h("p", { class: "muted" }, "Loading…"));
  const refresh = () => load(body);
  clear(main, h("section", { class: "page" },
    h("div", { class: "page-head" }, h("h1", {}, heading), h("span", { class: "spacer" }),
      h("button", { type: "button", class: "ghost", id: "refresh", onclick: refresh }, "Refresh")),
    h("p", { class: "muted intro" }, intro), body));
  refresh();
  const timer = everyMs ? setInterval(refresh, everyMs) : null;
  return () => clearInterval(timer);
}

function json(value) {
  return h("code", { class: "small" }, JSON.stringify(value));
}

export function showHosts(main) {
  return page(main, "Hosts", "Where runtimes run: each host's agent heartbeats through Redis.",
    loadHosts, 10000);
}

function loadHosts(body) {
  get("/v1/hosts").then(({ hosts }) => {
    const rows = hosts.map((x) =>
      h("tr", { "data-host-id": x.host_id },
        h("td", {}, x.host_id), h("td", {}, statusBadge(x.status)),
        h("td", {}, x.admin_status), h("td", {}, x.address || "—"),
        h("td", {}, x.drivers.join(", ")),
        h("td", {}, [
          x.capacity.cpus !== null ? `${x.capacity.cpus} cpu` : null,
          x.capacity.memory_mb !== null ? `${x.capacity.memory_mb} MB` : null,
          x.capacity.max_runtimes !== null ? `≤${x.capacity.max_runtimes} runtimes` : null,
        ].filter(Boolean).join(" · ") || "—"),
        h("td", { class: "labels" }, labelChips(x.labels)),
        h("td", { title: when(x.last_heartbeat_at) }, `${age(x.last_heartbeat_at)} ago`)));
    clear(body, rows.length
      ? table(["Host", "Status", "Admin", "Address", "Drivers", "Capacity", "Labels", "Heartbeat"],
          rows, { class: "grid", id: "hosts" })
      : h("p", { class: "muted" }, "No hosts."));
  }, (error) => clear(body, problem(error)));
}

function deliveriesOf(webhookId, cell, button) {
  button.disabled = true;
  get(`/v1/webhooks/${encodeURIComponent(webhookId)}/deliveries?limit=20`).then(({ deliveries }) => {
    clear(cell, deliveries.length
      ? table(["Created", "Event", "Runtime", "Status", "Attempts", "Last answer", "Next attempt"],
          deliveries.map((d) =>
            h("tr", { "data-delivery-id": d.id },
              h("td", {}, when(d.created_at)), h("td", {}, d.event_type),
              h("td", {}, d.runtime_id),
              h("td", {}, h("span", { class: `delivery ${d.status}` }, d.status)),
              h("td", {}, d.attempt_count),
              h("td", {}, d.last_status_code ?? "", d.last_error ? ` ${d.last_error}` : ""),
              h("td", {}, when(d.next_attempt_at)))),
          { class: "grid inner" })
      : h("p", { class: "muted" }, "No deliveries yet."));
  }, (error) => clear(cell, problem(error))).finally(() => (button.disabled = false));
}

export function showWebhooks(main) {
  return page(main, "Webhooks",
    "Signed POSTs of lifecycle events; each delivery is retried until it succeeds or gives up.",
    loadWebhooks);
}

function loadWebhooks(body) {
  get("/v1/webhooks").then(({ webhooks }) => {
    const rows = webhooks.flatMap((w) => {
      const cell = h("td", { colspan: 6, class: "deliveries" });
      const detail = h("tr", { class: "detail", hidden: true }, cell);
      const button = h("button", {
        type: "button", class: "ghost small", "data-deliveries": w.id,
        onclick: () => {
          detail.hidden = false;
          deliveriesOf(w.id, cell, button);
        },
      }, "Deliveries");
      return [
        h("tr", { "data-webhook-id": w.id },
          h("td", {}, h("code", {}, w.id)), h("td", {}, w.team_id || "every team"),
          h("td", { class: "url" }, w.url),
          h("td", {}, w.event_types.length ? w.event_types.join(", ") : "every type"),
          h("td", {}, w.enabled
            ? h("span", { class: w.failing_since ? "outcome failed" : "outcome success" },
                w.failing_since ? `failing since ${when(w.failing_since)}` : "enabled")
            : h("span", { class: "outcome failed" }, `disabled: ${w.disabled_reason || ""}`)),
          h("td", {}, button)),
        detail,
      ];
    });
    clear(body, webhooks.length
      ? table(["Webhook", "Team", "URL", "Events", "State", ""], rows, { class: "grid", id: "webhooks" })
      : h("p", { class: "muted" }, "No webhooks yet (POST /v1/webhooks creates one)."));
  }, (error) => clear(body, problem(error)));
}

export function showDeadLetters(main) {
  return page(main, "Dead letters",
    "Stream jobs that failed past their retries; `runplane dlq replay ID` puts one back.",
    loadDeadLetters);
}

function loadDeadLetters(body) {
  get("/v1/dead-letters?limit=200").then((letters) => {
    clear(body, letters.length
      ? table(["Id", "Stream", "Entry", "Deliveries", "Error", "Fields"],
          letters.map((l) =>
            h("tr", { "data-dead-letter-id": l.id },
              h("td", {}, h("code", {}, l.id)), h("td", {}, l.stream), h("td", {}, l.entry_id),
              h("td", {}, l.deliveries), h("td", { class: "error-text" }, l.error),
              h("td", {}, json(l.fields)))),
          { class: "grid", id: "dead-letters" })
      : h("p", { class: "muted" }, "No dead letters."));
  }, (error) => clear(body, problem(error)));
}
