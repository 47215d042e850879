// The runtime list: status counts (filters), filters by team, label selector
// and host, a search on the id, live rows, recent events and the create form.

import { get, key, query } from "./api.js";
import { age, clear, errorBox, h, labelChips, shortId, statusBadge, table, when } from "./dom.js";
import { feed } from "./feed.js";
import { createForm } from "./create.js";

const STATUS_ORDER = [
  "running", "pending", "starting", "stopping", "stopped", "pausing", "paused", "resuming",
  "restarting", "patching", "removing", "removed", "engine_unreachable", "error",
];

const RECENT = 20; // events in the "Recent events" panel

// Kept while the tab lives, so coming back from a runtime keeps the filters.
const filters = { status: "", team: "", label: "", host: "", search: "" };

export function selectorTerms(text) {
  return text.split(",").map((t) => t.trim()).filter(Boolean);
}

// The server's label selector (k=v, k!=v, k, !k), for rows that arrive live.
function matchesSelector(labels, terms) {
  return terms.every((term) => {
    if (term.startsWith("!")) return !(term.slice(1) in labels);
    const ne = term.indexOf("!=");
    if (ne >= 0) return labels[term.slice(0, ne)] !== term.slice(ne + 2);
    const eq = term.indexOf("=");
    if (eq >= 0) return labels[term.slice(0, eq)] === term.slice(eq + 1);
    return term in labels;
  });
}

function serverFilterMatch(runtime) {
  if (filters.team && runtime.team_id !== filters.team) return false;
  if (filters.host && runtime.host_id !== filters.host) return false;
  return matchesSelector(runtime.labels || {}, selectorTerms(filters.label));
}

export function showList(main) {
  const runtimes = new Map();
  const controller = new AbortController();
  const signal = controller.signal;
  const counts = h("div", { class: "counts", id: "counts" });
  const body = h("div", { id: "runtime-table" });
  const events = h("ol", { class: "events", id: "recent-events" });
  const message = h("div");
  let loading = null;

  const input = (name, placeholder, width) =>
    h("input", {
      id: `filter-${name}`,
      placeholder,
      value: filters[name],
      class: width,
      oninput: (e) => {
        filters[name] = e.target.value.trim();
        if (name === "search") render();
        else scheduleLoad();
      },
    });

  let timer = null;
  function scheduleLoad() {
    clearTimeout(timer);
    timer = setTimeout(load, 300);
  }

  async function load() {
    const terms = selectorTerms(filters.label);
    const path = `/v1/runtimes${query({
      limit: 1000,
      team_id: filters.team,
      host_id: filters.host,
      label: terms,
    })}`;
    const mine = (loading = get(path, { signal }));
    try {
      const page = await mine;
      if (loading !== mine) return; // a newer load answers
      runtimes.clear();
      for (const runtime of page.runtimes) runtimes.set(runtime.runtime_id, runtime);
      clear(message);
    } catch (error) {
      if (error.name === "AbortError") return;
      clear(message, errorBox(error));
    }
    render();
  }

  // Events are coalesced: a burst reads each runtime it touched once, and a
  // burst over many runtimes reads the list once.
  const touched = new Set();
  let flushTimer = null;
  function touch(runtimeId) {
    touched.add(runtimeId);
    if (!flushTimer) flushTimer = setTimeout(flush, 150);
  }

  function flush() {
    flushTimer = null;
    const ids = [...touched];
    touched.clear();
    if (ids.length > 20) load();
    else for (const id of ids) refresh(id);
  }

  async function refresh(runtimeId) {
    try {
      const runtime = await get(`/v1/runtimes/${encodeURIComponent(runtimeId)}`, { signal });
      if (serverFilterMatch(runtime)) runtimes.set(runtimeId, runtime);
      else runtimes.delete(runtimeId);
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error.status === 404) runtimes.delete(runtimeId);
    }
    render();
  }

  function render() {
    const all = [...runtimes.values()];
    const tally = {};
    for (const r of all) tally[r.status] = (tally[r.status] || 0) + 1;
    const chip = (status, label, n) =>
      h(
        "button",
        {
          type: "button",
          class: `count ${status ? `status-${status}` : ""} ${filters.status === status ? "on" : ""}`,
          "data-count": status || "all",
          onclick: () => {
            filters.status = filters.status === status ? "" : status;
            render();
          },
        },
        h("span", { class: "n" }, n),
        label,
      );
    clear(
      counts,
      chip("", "all", all.length - (tally.removed || 0)),
      STATUS_ORDER.filter((s) => tally[s]).map((s) => chip(s, s, tally[s])),
    );
    const search = filters.search.toLowerCase();
    const shown = all
      // A removed runtime's record stays; it is listed only when asked for.
      .filter((r) => (filters.status ? r.status === filters.status : r.status !== "removed"))
      .filter((r) => !search || r.runtime_id.toLowerCase().includes(search))
      .sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    const rows = shown.map((r) =>
      h(
        "tr",
        { "data-runtime-id": r.runtime_id },
        h(
          "td",
          {},
          h("a", { href: `#/runtimes/${encodeURIComponent(r.runtime_id)}`, title: r.runtime_id },
            shortId(r.runtime_id)),
        ),
        h("td", { class: "status" }, statusBadge(r.status)),
        h("td", {}, r.team_id),
        h("td", {}, r.host_id || "—"),
        h("td", {}, r.driver),
        h("td", { class: "labels" }, labelChips(r.labels)),
        h("td", { title: when(r.created_at) }, age(r.created_at)),
      ),
    );
    clear(
      body,
      shown.length
        ? table(["Runtime", "Status", "Team", "Host", "Driver", "Labels", "Age"], rows, {
            class: "grid",
            id: "runtimes",
          })
        : h("p", { class: "muted empty" }, all.length ? "No runtime matches." : "No runtimes yet."),
    );
  }

  // The panel starts with the newest events made before the page was opened;
  // the stream adds the ones after. Without them it still fills as they happen.
  async function loadRecent() {
    const asked = key.get();
    try {
      const page = await get(`/v1/events${query({ order: "desc", limit: RECENT })}`, { signal });
      if (key.get() !== asked) return; // signed out meanwhile: not the next key's to see
      feed.remember(
        page.events.map((e) => ({ kind: "event", id: e.id, type: e.event.type, envelope: e.event })),
      );
      renderEvents();
    } catch (error) {
      if (error.name !== "AbortError") console.warn("recent events", error.message);
    }
  }

  function renderEvents() {
    clear(
      events,
      feed.recent.slice(0, RECENT).map((e) => {
        const data = e.envelope.data || {};
        return h(
          "li",
          { "data-event-id": e.id, "data-subject": e.envelope.subject, class: "stacked" },
          h("div", {}, h("span", { class: "subject" }, e.envelope.subject), " ",
            data.status_to ? statusBadge(data.status_to) : null),
          h("div", { class: "muted" },
            h("span", { class: "time" }, new Date(e.envelope.time).toLocaleTimeString()), " · ",
            h("span", { class: "type" }, e.type)),
        );
      }),
    );
    if (!feed.recent.length) {
      events.append(h("li", { class: "muted" }, "Events appear here as they happen."));
    }
  }

  const unsubscribe = feed.subscribe((event) => {
    if (event.kind === "open" || event.kind === "resync") {
      load(); // whatever happened while the stream was down is in the list again
      if (event.kind === "resync") loadRecent();
      return;
    }
    renderEvents();
    const data = event.envelope.data || {};
    if ((data.resource || {}).type === "runtime") touch(event.envelope.subject);
  });

  const form = createForm((runtime) => {
    runtimes.set(runtime.runtime_id, runtime);
    render();
  });

  clear(
    main,
    h(
      "section",
      { class: "page" },
      h(
        "div",
        { class: "page-head" },
        h("h1", {}, "Runtimes"),
        h("button", { type: "button", id: "new-runtime", onclick: () => form.toggle() },
          "New runtime"),
      ),
      form.element,
      counts,
      h(
        "div",
        { class: "filters" },
        input("search", "Search runtime id", "wide"),
        input("team", "Team"),
        input("label", "Labels: env=prod, !tmp", "wide"),
        input("host", "Host"),
      ),
      message,
      h("div", { class: "split" }, h("div", { class: "card grow" }, body),
        h("aside", { class: "card side" }, h("h2", {}, "Recent events"), events)),
    ),
  );
  render();
  renderEvents();
  loadRecent();
  load(); // and again when the stream (re)opens, for what happened in between
  const ages = setInterval(render, 15000); // the Age column moves on
  return () => {
    controller.abort();
    clearTimeout(timer);
    clearTimeout(flushTimer);
    clearInterval(ages);
    unsubscribe();
  };
}
