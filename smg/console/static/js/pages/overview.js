// Overview: requests, errors, latency, tokens and tool calls over the last minutes (GET /stats/recent),
// plus a line on workers and MCP servers that need attention.

import { api } from "../api.js";
import { drawChart } from "../charts.js";
import { count, h, localTime, ms, replaceChildren, setText } from "../dom.js";

const $ = (selector) => document.querySelector(selector);

function minutes() {
  const value = Number($("#overview-minutes").value);
  return value >= 1 && value <= 60 ? value : 15;
}

function sum(points, key) {
  return points.reduce((total, p) => total + (Number(p[key]) || 0), 0);
}

function peak(points, value) {
  return points.reduce((best, p) => Math.max(best, Number(value(p)) || 0), 0);
}

const CHARTS = [
  {
    name: "requests",
    what: "Requests per 5 seconds",
    series: [{ label: "requests", kind: "bar", className: "s-requests", value: (p) => p.requests }],
  },
  {
    name: "errors",
    what: "Errors per 5 seconds",
    series: [{ label: "errors", kind: "bar", className: "s-errors", value: (p) => p.errors }],
  },
  {
    name: "latency",
    what: "Latency in milliseconds",
    series: [
      { label: "p50", kind: "line", className: "s-p50", value: (p) => p.p50_ms },
      { label: "p99", kind: "line", className: "s-p99", value: (p) => p.p99_ms },
    ],
  },
  {
    name: "tokens",
    what: "Tokens per 5 seconds",
    series: [
      { label: "prompt", kind: "line", className: "s-prompt", value: (p) => p.prompt_tokens },
      { label: "completion", kind: "line", className: "s-completion", value: (p) => p.completion_tokens },
    ],
  },
  {
    name: "tool_calls",
    what: "Tool calls per 5 seconds",
    series: [
      { label: "calls", kind: "bar", className: "s-tools", value: (p) => p.tool_calls },
      { label: "failed", kind: "bar", className: "s-tool-errors", value: (p) => p.tool_errors },
    ],
  },
];

function describe(chart, points, window, since) {
  if (!points.length) return `${chart.what} over the last ${window} minutes: no data yet.`;
  const span = since ? `${since} (the data starts inside the ${window}-minute window)` : `over the last ${window} minutes`;
  const last = points[points.length - 1];
  const bits = chart.series.map((series) => {
    const latest = series.value(last);
    const latestText = latest === null || latest === undefined ? "none" : String(+Number(latest).toFixed(1));
    return `${series.label} latest ${latestText}, peak ${+peak(points, series.value).toFixed(1)}`;
  });
  return `${chart.what} ${span}: ${bits.join("; ")}.`;
}

function renderStats(points) {
  let lastWithRequests = null;
  for (let i = points.length - 1; i >= 0; i -= 1) {
    if (points[i].requests > 0 && points[i].p50_ms !== null && points[i].p50_ms !== undefined) {
      lastWithRequests = points[i];
      break;
    }
  }
  setText($('[data-stat="requests"]'), count(sum(points, "requests")));
  setText($('[data-stat="errors"]'), count(sum(points, "errors")));
  setText($('[data-stat="p50_ms"]'), lastWithRequests ? ms(lastWithRequests.p50_ms) : "–");
  setText($('[data-stat="p99_ms"]'), lastWithRequests ? ms(lastWithRequests.p99_ms) : "–");
  setText($('[data-stat="tokens"]'), count(sum(points, "prompt_tokens") + sum(points, "completion_tokens")));
  setText($('[data-stat="tool_calls"]'), count(sum(points, "tool_calls")));
}

function renderGlance(workers, servers) {
  const items = [];
  if (workers) {
    const unhealthy = workers.filter((w) => !w.healthy).length;
    const open = workers.filter((w) => w.circuit_breaker !== "closed").length;
    items.push(
      h(
        "li",
        { class: unhealthy || open ? "attention" : "" },
        h("a", { href: "#/workers" }, `${workers.length} worker${workers.length === 1 ? "" : "s"}`),
        `: ${unhealthy} unhealthy, ${open} with the breaker not closed`,
      ),
    );
  }
  if (servers) {
    const down = servers.filter((x) => !x.status || x.status.state !== "connected").length;
    items.push(
      h(
        "li",
        { class: down ? "attention" : "" },
        h("a", { href: "#/servers" }, `${servers.length} MCP server${servers.length === 1 ? "" : "s"}`),
        `: ${down} not connected`,
      ),
    );
  }
  const list = $("#overview-glance");
  const signature = items.map((li) => li.className + li.textContent).join("|");
  if (list.dataset.signature !== signature) {
    list.dataset.signature = signature;
    replaceChildren(list, items);
  }
}

export default {
  init(ctx) {
    $("#overview-minutes").addEventListener("change", () => ctx.pollNow());
  },

  async refresh(isCurrent) {
    const window = minutes();
    const [stats, workers, servers] = await Promise.all([
      api("GET", `stats/recent?minutes=${window}`),
      api("GET", "workers").catch(() => null),
      api("GET", "mcp/servers").catch(() => null),
    ]);
    if (!isCurrent()) return;
    const points = Array.isArray(stats.points) ? stats.points : [];
    const interval = Number(stats.interval_secs) || 5;
    const windowSlots = Math.max(1, Math.round((window * 60) / interval));
    const endTime = points.length ? points[points.length - 1].t : Date.now() / 1000;
    // A gateway that started inside the window has no history before its first point: the axis starts
    // there rather than squeezing the data against the right edge.
    const firstSlots = points.length ? Math.round((endTime - points[0].t) / interval) + 1 : windowSlots;
    const slots = Math.max(1, Math.min(windowSlots, firstSlots));
    const since = slots < windowSlots ? `since ${localTime(points[0].t)}` : "";
    renderStats(points);
    for (const chart of CHARTS) {
      drawChart(document.querySelector(`figure[data-chart="${chart.name}"]`), {
        slots,
        interval,
        endTime,
        points,
        series: chart.series,
        since,
        label: describe(chart, points, window, since),
      });
    }
    renderGlance(workers ? workers.workers : null, servers ? servers.servers : null);
  },
};
