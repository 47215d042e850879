// DOM helpers: everything the page shows is built with DOM APIs and text
// nodes, never by parsing HTML, so data from the API can only ever be text.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "value") {
      el.value = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}`, "data-status": status }, status);
}

export function age(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.floor(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

// Long generated ids keep their start and end; the full id is in the title.
export function shortId(id, max = 28) {
  if (id.length <= max) return id;
  const half = Math.floor((max - 1) / 2);
  return `${id.slice(0, half)}…${id.slice(-half)}`;
}

export function errorBox(error) {
  return h(
    "div",
    { class: "error", role: "alert" },
    h("code", {}, error.code || "error"),
    " ",
    error.message || String(error),
  );
}

// An admin-only page asked with a team key: the server's 403, said politely.
export function problem(error) {
  if (error.status === 403) {
    return h(
      "div",
      { class: "notice", role: "note" },
      h("strong", {}, "This page needs an admin key. "),
      "The server said: ",
      h("code", {}, error.code),
      " ",
      error.message,
    );
  }
  return errorBox(error);
}

export function labelChips(labels) {
  return Object.entries(labels || {}).map(([k, v]) => h("span", { class: "chip" }, `${k}=${v}`));
}

export function table(headers, rows, attrs = {}) {
  return h(
    "table",
    attrs,
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))),
    h("tbody", {}, rows),
  );
}

export function toast(text, kind = "ok") {
  const el = document.getElementById("toast");
  clear(el, text);
  el.className = `toast ${kind}`;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (el.hidden = true), 4000);
}

// An in-page confirmation (not window.confirm: a test can click it).
export function confirmDialog(text) {
  const dialog = document.getElementById("confirm");
  clear(document.getElementById("confirm-text"), text);
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}
