// The "New runtime" form: what the README's first session does with
// `runtime create demo --command "..." --port N`, in the browser.

import { request } from "./api.js";
import { clear, errorBox, h, toast } from "./dom.js";

// Splits a command line as a shell would for words and quotes (no expansion).
export function splitCommand(text) {
  const words = [];
  let word = null;
  let quote = null;
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = null;
      else word += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      word = word ?? "";
    } else if (/\s/.test(ch)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? "") + ch;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

function parseLabels(text) {
  const labels = {};
  for (const term of text.split(",").map((t) => t.trim()).filter(Boolean)) {
    const eq = term.indexOf("=");
    if (eq < 0) throw { code: "invalid_labels", message: `a label is key=value, not "${term}"` };
    labels[term.slice(0, eq).trim()] = term.slice(eq + 1).trim();
  }
  return labels;
}

export function createForm(onCreated) {
  const field = (name, label, attrs = {}) => {
    const input = h("input", { id: `new-${name}`, name, ...attrs });
    return [input, h("label", { class: "field" }, h("span", {}, label), input)];
  };
  const [id, idField] = field("id", "Runtime id", { placeholder: "demo (or empty: generated)" });
  const [command, commandField] = field("command", "Command", {
    placeholder: "python3 -m http.server 9000",
    required: true,
  });
  const [port, portField] = field("port", "Port", { type: "number", min: 1, max: 65535 });
  const [labels, labelsField] = field("labels", "Labels", { placeholder: "env=dev, owner=me" });
  const message = h("div");
  const element = h(
    "form",
    { id: "create-form", class: "card create", hidden: true },
    h("h2", {}, "New runtime"),
    h("div", { class: "fields" }, idField, commandField, portField, labelsField),
    message,
    h("div", { class: "buttons" },
      h("button", { type: "button", class: "ghost", onclick: () => (element.hidden = true) },
        "Cancel"),
      h("button", { type: "submit", id: "create-submit" }, "Create and start")),
  );
  element.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(message);
    try {
      const spec = { command: splitCommand(command.value) };
      if (port.value) spec.port = Number(port.value);
      const body = { spec };
      if (id.value.trim()) body.runtime_id = id.value.trim();
      const parsed = parseLabels(labels.value);
      if (Object.keys(parsed).length) body.labels = parsed;
      const runtime = await request("POST", "/v1/runtimes", { body });
      toast(`created ${runtime.runtime_id}: ${runtime.status}`);
      element.reset();
      element.hidden = true;
      onCreated(runtime);
    } catch (error) {
      clear(message, errorBox(error));
    }
  });
  return {
    element,
    toggle() {
      element.hidden = !element.hidden;
      if (!element.hidden) id.focus();
    },
  };
}
