// The live panels of a runtime's page: its logs (NDJSON follow) and metrics.

import { get, ndjson } from "./api.js";
import { clear, errorBox, h } from "./dom.js";
import { bytes, lineChart } from "./chart.js";

const MAX_LINES = 500;

// Follows the runtime's output until the runtime stops (the server ends the
// follow then); `restart()` follows again, e.g. once it runs again.
export function logsPanel(runtimeId) {
  const pre = h("pre", { class: "logs", id: "logs" });
  const state = h("p", { class: "muted small", id: "logs-state" }, "connecting…");
  let controller = null;
  let following = false;
  let count = 0;

  function add(line) {
    const row = h("span", { class: `line ${line.stream}` }, line.text, "\n");
    pre.append(row);
    count += 1;
    while (pre.childNodes.length > MAX_LINES) pre.firstChild.remove();
    pre.scrollTop = pre.scrollHeight;
  }

  async function follow() {
    if (following) return;
    following = true;
    controller = new AbortController();
    clear(pre);
    count = 0;
    clear(state, "following");
    const path = `/v1/runtimes/${encodeURIComponent(runtimeId)}/logs?follow=true&tail=100`;
    try {
      for await (const item of ndjson(path, controller.signal)) {
        if (item.end) clear(state, `ended: ${item.end.reason}`);
        else if (item.error) clear(state, errorBox(item.error));
        else add(item);
      }
    } catch (error) {
      if (error.name !== "AbortError") clear(state, errorBox(error));
    } finally {
      following = false;
      if (!count) pre.append(h("span", { class: "muted" }, "(no output)"));
    }
  }

  return {
    element: h("div", {}, state, pre),
    start: follow,
    restart: follow, // no-op while a follow is open
    stop: () => controller && controller.abort(),
  };
}

export function metricsPanel(runtimeId) {
  const element = h("div", { class: "charts", id: "metrics" });
  const note = h("p", { class: "muted small" });
  let timer = null;
  let stopped = false;

  async function poll() {
    let wait = 5000;
    try {
      const m = await get(`/v1/runtimes/${encodeURIComponent(runtimeId)}/metrics?window=300`);
      const cpu = m.samples.map((s) => ({ x: s.ts, y: s.cpu_percent }));
      const mem = m.samples.map((s) => ({ x: s.ts, y: s.memory_bytes }));
      clear(
        element,
        lineChart(cpu, { title: "CPU % (of one core)", format: (v) => `${v.toFixed(1)}%`, floor: 1 }),
        lineChart(mem, { title: "Memory", format: bytes, floor: 1024 * 1024 }),
      );
      const last = m.samples[m.samples.length - 1];
      clear(
        note,
        `${m.samples.length} samples every ${m.interval_s}s`,
        last && last.processes !== null ? ` · ${last.processes} processes` : "",
        m.running ? "" : " · not running",
      );
      wait = Math.max(2000, m.interval_s * 1000);
    } catch (error) {
      clear(element, errorBox(error));
    }
    if (!stopped) timer = setTimeout(poll, wait);
  }

  return {
    element: h("div", {}, element, note),
    start: poll,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
