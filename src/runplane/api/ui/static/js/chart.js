// A small inline SVG line chart: enough for a runtime's recent CPU and memory.

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

// points: [{x: epoch seconds, y: number}]; format: y value -> label text.
// floor: the least top of the y axis, so a flat line at 0 still has a scale.
export function lineChart(points, { title, format = String, floor = 1, width = 420, height = 140 } = {}) {
  const pad = { left: 56, right: 10, top: 22, bottom: 20 };
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart",
    role: "img",
    "aria-label": title,
  });
  root.append(svg("text", { x: pad.left, y: 14, class: "chart-title" }, title));
  if (!points.length) {
    root.append(svg("text", { x: width / 2, y: height / 2, class: "chart-empty" }, "no samples yet"));
    return root;
  }
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const y1 = Math.max(Math.max(...ys) * 1.1, floor);
  const sx = (x) => pad.left + ((x - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const sy = (y) => height - pad.bottom - (y / y1) * (height - pad.top - pad.bottom);
  for (const v of [0, y1 / 2, y1]) {
    root.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: sy(v), y2: sy(v), class: "grid" }));
    root.append(svg("text", { x: pad.left - 6, y: sy(v) + 4, class: "axis", "text-anchor": "end" }, format(v)));
  }
  const span = Math.round(x1 - x0);
  root.append(svg("text", { x: pad.left, y: height - 4, class: "axis" }, `-${span}s`));
  root.append(svg("text", { x: width - pad.right, y: height - 4, class: "axis", "text-anchor": "end" }, "now"));
  const line = points.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" ");
  root.append(svg("polyline", { points: line, class: "line" }));
  const last = points[points.length - 1];
  root.append(svg("circle", { cx: sx(last.x), cy: sy(last.y), r: 3, class: "dot" }));
  root.dataset.samples = String(points.length);
  return root;
}

export function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(n < 10 && i ? 1 : 0)} ${units[i]}`;
}
