// Small inline SVG charts (bars and lines) of /stats/recent points. No library: the SVG is built from
// elements and attributes (never markup strings, never style attributes: the page's CSP forbids them;
// colours come from classes in console.css).

import { h, localTime, replaceChildren, setText } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 600;
const HEIGHT = 120;

function s(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  return el;
}

/** A round upper bound for the y axis: 1, 2 or 5 times a power of ten, at least ``value``. */
export function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

function formatAxis(value) {
  if (value >= 1e6) return `${+(value / 1e6).toFixed(1)}M`;
  if (value >= 1e4) return `${+(value / 1e3).toFixed(1)}k`;
  return String(+value.toFixed(2));
}

function parts(figure) {
  let frame = figure.querySelector(".chart-frame");
  if (!frame) {
    const svg = s("svg", {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      preserveAspectRatio: "none",
      role: "img",
      class: "chart",
      focusable: "false",
    });
    frame = h("div", { class: "chart-frame" }, h("span", { class: "y-max", "aria-hidden": "true" }), svg);
    const axis = h(
      "div",
      { class: "x-axis", "aria-hidden": "true" },
      h("span", { class: "x-start" }),
      h("span", { class: "x-end" }),
    );
    const legend = h("ul", { class: "legend", "aria-hidden": "true" });
    figure.append(frame, axis, legend);
  }
  return {
    svg: frame.querySelector("svg"),
    yMax: frame.querySelector(".y-max"),
    start: figure.querySelector(".x-start"),
    end: figure.querySelector(".x-end"),
    legend: figure.querySelector(".legend"),
  };
}

function setSince(figure, text) {
  const caption = figure.querySelector("figcaption");
  let note = caption.querySelector(".since");
  if (!note && text) {
    note = h("span", { class: "since" });
    caption.append(" ", note); // the space lets the note wrap to its own line as a whole
  }
  if (note) setText(note, text ? `· ${text}` : "");
}

/**
 * Draw a chart into ``figure`` (which holds its <figcaption>).
 * ``spec``: {slots, interval, endTime, points: [{t, ...}], series: [{key, label, kind: "bar"|"line",
 * className, value(point) -> number|null}], label: text for screen readers}.
 * Points are placed by time in ``slots`` slots of ``interval`` seconds ending at ``endTime``; the x axis
 * starts at the first slot. ``since`` (optional): a note appended to the figcaption (e.g. "since 15:37:25"
 * when the data starts later than the chosen window), or "" for none.
 */
export function drawChart(figure, spec) {
  const { svg, yMax, start, end, legend } = parts(figure);
  svg.setAttribute("aria-label", spec.label);
  setSince(figure, spec.since || "");
  const signature = JSON.stringify([spec.slots, spec.endTime, spec.points.map((p) => spec.series.map((x) => x.value(p)))]);
  if (svg.dataset.signature === signature) return;
  svg.dataset.signature = signature;

  const slotWidth = WIDTH / spec.slots;
  const slotOf = (t) => spec.slots - 1 - Math.round((spec.endTime - t) / spec.interval);
  let max = 0;
  for (const p of spec.points) {
    for (const series of spec.series) {
      const v = series.value(p);
      if (typeof v === "number" && v > max) max = v;
    }
  }
  const top = niceMax(max);
  const y = (v) => HEIGHT - (v / top) * (HEIGHT - 4);

  const nodes = [];
  for (const fraction of [0.5, 1]) {
    const gy = y(top * fraction);
    nodes.push(s("line", { x1: 0, x2: WIDTH, y1: gy, y2: gy, class: "grid" }));
  }
  nodes.push(s("line", { x1: 0, x2: WIDTH, y1: HEIGHT - 0.5, y2: HEIGHT - 0.5, class: "baseline" }));

  for (const series of spec.series) {
    if (series.kind === "bar") {
      for (const p of spec.points) {
        const v = series.value(p);
        const slot = slotOf(p.t);
        if (!(v > 0) || slot < 0 || slot >= spec.slots) continue;
        const top_ = y(v);
        // A short history has few, wide slots: keep the bars slim, centred in their slot.
        const width = Math.min(Math.max(slotWidth * 0.8, 0.5), WIDTH / 40);
        nodes.push(
          s("rect", {
            x: slot * slotWidth + (slotWidth - width) / 2,
            y: top_,
            width,
            height: HEIGHT - top_,
            class: `bar ${series.className}`,
          }),
        );
      }
    } else {
      let run = [];
      const flush = () => {
        if (run.length === 1) {
          // An isolated point: a dot (a zero-length stroke with round caps, see console.css), round even
          // though the chart stretches and visible even when the slot is a pixel wide.
          const [x, yy] = run[0];
          nodes.push(s("path", { d: `M${x.toFixed(1)},${yy.toFixed(1)}h0`, class: `dot ${series.className}` }));
        } else if (run.length) {
          nodes.push(s("polyline", { points: run.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(" "), class: `line ${series.className}` }));
        }
        run = [];
      };
      let lastSlot = null;
      for (const p of spec.points) {
        const v = series.value(p);
        const slot = slotOf(p.t);
        if (slot < 0 || slot >= spec.slots) continue;
        if (typeof v !== "number" || (lastSlot !== null && slot !== lastSlot + 1)) flush();
        if (typeof v === "number") run.push([slot * slotWidth + slotWidth / 2, y(v)]);
        lastSlot = typeof v === "number" ? slot : null;
      }
      flush();
    }
  }
  replaceChildren(svg, nodes);

  setText(yMax, spec.points.length ? formatAxis(top) : "");
  const first = spec.endTime - (spec.slots - 1) * spec.interval;
  setText(start, spec.points.length ? localTime(first) : "");
  setText(end, spec.points.length ? localTime(spec.endTime) : "no data yet");
  if (!legend.childElementCount && spec.series.length > 1) {
    replaceChildren(
      legend,
      spec.series.map((x) => h("li", {}, h("span", { class: `swatch ${x.className}` }), x.label)),
    );
  }
}
