// Recent tool loops: GET /loops/recent, newest first (the gateway's bounded in-memory ring).

import { api } from "../api.js";
import { badge, h, replaceChildren, timeEl } from "../dom.js";

const $ = (selector) => document.querySelector(selector);
const LIMIT = 50;

function callItem(call) {
  const duration = typeof call.duration_ms === "number" ? Math.round(call.duration_ms) : "?";
  return h(
    "li",
    {},
    h("code", {}, `${call.server}/${call.tool}`),
    " ",
    badge(call.status),
    ` ${duration} ms`,
    call.retried ? " (retried)" : "",
  );
}

function stopCell(loop) {
  if (loop.stop_reason) return badge(loop.stop_reason, "plain");
  if (loop.error_code) return h("span", {}, badge("error"), ` ${loop.error_code}`);
  return "–";
}

function row(loop) {
  const calls = Array.isArray(loop.calls) ? loop.calls : [];
  const td = (field, ...children) => h("td", { class: `f-${field}`, dataset: { field } }, ...children);
  return h(
    "tr",
    { dataset: { requestId: loop.request_id ?? "" } },
    td("endpoint", loop.endpoint),
    td("model", loop.model),
    td("started", timeEl(loop.started_at, true)),
    td("iterations", loop.iterations ?? "–"),
    td("calls", calls.length ? h("ol", { class: "calls" }, calls.map(callItem)) : "no calls"),
    td("stop_reason", stopCell(loop)),
    td("caller", loop.caller ?? h("span", { class: "muted" }, "–")),
    td("request_id", h("code", {}, loop.request_id ?? "–")),
    td("trace_id", loop.trace_id ? h("code", {}, loop.trace_id) : "–"),
  );
}

export default {
  init() {},

  async refresh(isCurrent) {
    const data = await api("GET", `loops/recent?limit=${LIMIT}`);
    if (!isCurrent()) return;
    const loops = Array.isArray(data.data) ? data.data : [];
    const tbody = $("#loops-table tbody");
    // Rows hold no controls, so an answer that differs simply replaces them.
    const signature = JSON.stringify(loops);
    if (tbody.dataset.signature !== signature) {
      tbody.dataset.signature = signature;
      replaceChildren(tbody, loops.map(row));
    }
    $("#loops-empty").hidden = loops.length > 0;
  },
};
