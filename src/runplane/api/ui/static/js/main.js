// The dashboard's entry: the login form, the hash router and the live marker.

import { ApiError, get, key, onUnauthorized } from "./api.js";
import { clear, errorBox, h } from "./dom.js";
import { feed } from "./feed.js";
import { showDeadLetters, showHosts, showWebhooks } from "./admin.js";
import { showList } from "./list.js";
import { showRuntime } from "./runtime.js";

const main = document.getElementById("main");
let leave = null; // the current page's cleanup (aborts its streams and timers)

function setChrome(loggedIn) {
  document.getElementById("nav").hidden = !loggedIn;
  document.getElementById("logout").hidden = !loggedIn;
  document.getElementById("live").hidden = !loggedIn;
}

function showLogin(error) {
  if (leave) leave();
  leave = null;
  feed.stop();
  setChrome(false);
  const input = h("input", {
    id: "login-key",
    type: "password",
    name: "key",
    autocomplete: "off",
    placeholder: "rp_…",
    required: true,
  });
  const form = h(
    "form",
    { id: "login", class: "card login" },
    h("h1", {}, "Sign in"),
    h(
      "p",
      { class: "muted" },
      "Paste an API key: the admin key serve wrote to its data directory " +
        "(.runplane/admin.key), or a team key. It is kept for this browser tab's session only.",
    ),
    error ? errorBox(error) : null,
    h("label", { for: "login-key" }, "API key"),
    input,
    h("button", { type: "submit", id: "login-submit" }, "Sign in"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    key.set(input.value.trim());
    await enter();
  });
  clear(main, form);
  input.focus();
}

async function enter() {
  try {
    await get("/v1/runtimes?limit=1"); // checks the key before anything is shown
  } catch (error) {
    key.clear();
    showLogin(error instanceof ApiError ? error : { code: "error", message: String(error) });
    return;
  }
  setChrome(true);
  feed.start();
  route();
}

function route() {
  if (!key.get()) return showLogin();
  if (leave) leave();
  leave = null;
  const hash = decodeURIComponent(location.hash.replace(/^#/, "")) || "/";
  let page = "runtimes";
  clear(main);
  if (hash.startsWith("/runtimes/")) {
    leave = showRuntime(main, hash.slice("/runtimes/".length));
  } else if (hash === "/hosts") {
    page = "hosts";
    leave = showHosts(main);
  } else if (hash === "/webhooks") {
    page = "webhooks";
    leave = showWebhooks(main);
  } else if (hash === "/dead-letters") {
    page = "dead-letters";
    leave = showDeadLetters(main);
  } else {
    leave = showList(main);
  }
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.page === page);
  }
}

onUnauthorized.handler = (error) => {
  key.clear();
  showLogin(error);
};

feed.onState((state, detail) => {
  const el = document.getElementById("live");
  el.dataset.state = state;
  const text = { live: "● live", reconnecting: "● reconnecting…", error: "● stream refused" };
  clear(el, text[state] || "");
  el.title = detail || "";
});

document.getElementById("logout").addEventListener("click", () => {
  key.clear();
  showLogin();
});

window.addEventListener("hashchange", () => {
  if (key.get()) route();
});

if (key.get()) enter();
else showLogin();
