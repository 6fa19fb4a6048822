// MCP servers: GET /mcp/servers (transport, state, breaker, reconnects, last error), the tools of one
// server (GET /mcp/servers/{name}), refresh (POST .../refresh), remove (DELETE, after confirmation),
// add (POST /mcp/servers with only the fields of the chosen transport); "try a tool" is try-tool.js.

import { api, ApiError, seg } from "../api.js";
import { cell, h, localTime, replaceChildren, setBadge, setText, syncRows } from "../dom.js";
import { closeTry, initTry, openTry, parkTryForm, reattachTry } from "./try-tool.js";

const $ = (selector) => document.querySelector(selector);
const FIELDS = ["transport", "state", "tools", "breaker", "reconnects", "last_error"];
const HINTS = [
  ["read_only", "read only"],
  ["idempotent", "idempotent"],
  ["destructive", "destructive"],
];

let ctx = null;
const panel = { server: null, tools: [] };

// ---- the table -----------------------------------------------------------------------------------

function actionButton(action, label, className = "small") {
  return h("button", { type: "button", class: className, dataset: { action } }, label);
}

function createRow(server) {
  const row = h("tr", { dataset: { server: server.name } });
  row.append(h("th", { scope: "row", class: "f-name" }));
  for (const field of FIELDS) row.append(h("td", { class: `f-${field}`, dataset: { field } }));
  row.append(
    h(
      "td",
      { class: "actions" },
      actionButton("show-tools", "Tools"),
      actionButton("refresh-server", "Refresh"),
      actionButton("remove-server", "Remove", "danger small"),
    ),
  );
  return row;
}

function updateRow(row, server) {
  const status = server.status;
  setText(row.querySelector(".f-name"), server.name);
  setText(cell(row, "transport"), server.transport);
  setBadge(cell(row, "state"), status ? status.state : "not started");
  setText(cell(row, "tools"), status ? status.tools : "–");
  setBadge(cell(row, "breaker"), status ? status.breaker : "closed");
  setText(cell(row, "reconnects"), status ? status.reconnects : 0);
  setText(cell(row, "last_error"), status && status.last_error ? status.last_error : "");
  const labels = { "show-tools": "Show tools of", "refresh-server": "Refresh tools of", "remove-server": "Remove server" };
  for (const [action, label] of Object.entries(labels)) {
    row.querySelector(`[data-action="${action}"]`).setAttribute("aria-label", `${label} ${server.name}`);
  }
}

// ---- the tools panel -----------------------------------------------------------------------------

function toolItem(tool) {
  const hints = HINTS.filter(([key]) => tool[key] === true).map(([key, label]) =>
    h("span", { class: `hint hint-${key}`, dataset: { hint: key } }, label),
  );
  const schema = tool.input_schema && typeof tool.input_schema === "object" ? tool.input_schema : { type: "object" };
  return h(
    "li",
    { dataset: { tool: tool.name } },
    h(
      "div",
      { class: "tool-head" },
      h("code", { class: "tool-name" }, tool.name),
      tool.exposed_name && tool.exposed_name !== tool.name
        ? h("span", { class: "muted" }, ` exposed as ${tool.exposed_name}`)
        : null,
      hints.length ? h("span", { class: "hints" }, hints) : null,
    ),
    h("p", { class: "tool-description" }, tool.description || "No description."),
    h("details", {}, h("summary", {}, "Input schema"), h("pre", {}, JSON.stringify(schema, null, 2))),
    h(
      "button",
      { type: "button", class: "small", dataset: { action: "try-tool" }, "aria-label": `Try tool ${tool.name}` },
      "Try",
    ),
  );
}

function renderTools(name, tools) {
  parkTryForm();
  panel.server = name;
  panel.tools = tools;
  setText($("#server-tools-title"), `Tools of ${name}`);
  setText($("#server-tools-note"), `${tools.length} tool${tools.length === 1 ? "" : "s"}, listed at ${localTime(Date.now() / 1000)}.`);
  replaceChildren($("#server-tools-list"), tools.map(toolItem));
  reattachTry(name, tools);
  $("#server-tools").hidden = false;
}

function closePanel() {
  closeTry();
  panel.server = null;
  panel.tools = [];
  $("#server-tools").hidden = true;
}

async function showTools(name) {
  const status = $("#servers-status");
  setText(status, `Loading the tools of ${name}…`);
  try {
    const data = await api("GET", `mcp/servers/${seg(name)}`);
    renderTools(name, Array.isArray(data.tools) ? data.tools : []);
    setText(status, "");
    $("#server-tools-title").focus();
  } catch (err) {
    setText(status, `Could not list the tools of ${name}: ${err.message}`);
  }
}

async function refreshServer(name) {
  const status = $("#servers-status");
  setText(status, `Refreshing ${name}…`);
  try {
    const data = await api("POST", `mcp/servers/${seg(name)}/refresh`);
    const tools = Array.isArray(data.tools) ? data.tools : [];
    setText(status, `Refreshed ${name}: ${tools.length} tool${tools.length === 1 ? "" : "s"}.`);
    if (panel.server === name) renderTools(name, tools);
  } catch (err) {
    setText(status, `Could not refresh ${name}: ${err.message}`);
  }
  ctx.pollNow();
}

async function removeServer(name) {
  const status = $("#servers-status");
  if (!(await ctx.confirm(`Remove MCP server ${name}? Its tools disappear from every request.`, "Remove server"))) {
    return;
  }
  try {
    await api("DELETE", `mcp/servers/${seg(name)}`);
    setText(status, `Removed server ${name}.`);
    if (panel.server === name) closePanel();
    $("#page-servers-title").focus(); // the focused button leaves with its row
  } catch (err) {
    setText(status, `Could not remove ${name}: ${err.message}`);
  }
  ctx.pollNow();
}

// ---- add a server --------------------------------------------------------------------------------

function applyTransport() {
  const transport = $("#server-transport").value;
  for (const field of document.querySelectorAll("#server-add-form [data-transport]")) {
    const applies = field.dataset.transport.split(" ").includes(transport);
    field.hidden = !applies;
    for (const input of field.querySelectorAll("input, textarea, select")) {
      input.disabled = !applies;
      input.required = applies && input.id !== "server-args";
    }
  }
}

function addStatus(message, findings = []) {
  const list = findings.length
    ? h("ul", { class: "compact" }, findings.map((f) => h("li", {}, `${f.blocking ? "error" : "note"}: ${f.message}`)))
    : null;
  replaceChildren(
    $("#server-add-status"),
    h("p", {}, message),
    list && findings.length > 2
      ? h("details", {}, h("summary", {}, `${findings.length} notes from the check`), list)
      : list,
  );
}

async function addServer(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const name = $("#server-name").value.trim();
  const transport = $("#server-transport").value;
  const body = { name, transport };
  if (transport === "stdio") {
    body.command = $("#server-command").value.trim();
    const args = $("#server-args")
      .value.split("\n")
      .map((line) => line.replace(/\r$/, ""))
      .filter((line) => line.trim() !== "");
    if (args.length) body.args = args;
  } else {
    body.url = $("#server-url").value.trim();
  }
  const submit = form.querySelector('button[type="submit"]');
  submit.disabled = true;
  addStatus(`Adding ${name || "server"}…`);
  try {
    const out = await api("POST", "mcp/servers", body);
    const findings = Array.isArray(out.findings) ? out.findings : [];
    addStatus(`Added server ${name}.`, findings);
    form.reset();
    applyTransport();
  } catch (err) {
    addStatus(`Not added: ${err instanceof ApiError ? err.message : String(err)}`);
  } finally {
    submit.disabled = false;
  }
  ctx.pollNow();
}

// ---- page ----------------------------------------------------------------------------------------

export default {
  init(context) {
    ctx = context;
    $("#servers-table tbody").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const name = button.closest("tr").dataset.server;
      if (button.dataset.action === "show-tools") showTools(name);
      else if (button.dataset.action === "refresh-server") refreshServer(name);
      else if (button.dataset.action === "remove-server") removeServer(name);
    });
    $("#server-tools-list").addEventListener("click", (event) => {
      const button = event.target.closest('button[data-action="try-tool"]');
      const tool = button && panel.tools.find((t) => t.name === button.closest("li").dataset.tool);
      if (tool) openTry(panel.server, tool);
    });
    $("#server-tools-close").addEventListener("click", closePanel);
    initTry();
    $("#server-transport").addEventListener("change", applyTransport);
    $("#server-add-form").addEventListener("submit", addServer);
    applyTransport();
  },

  async refresh(isCurrent) {
    const data = await api("GET", "mcp/servers");
    if (!isCurrent()) return;
    const list = Array.isArray(data.servers) ? data.servers : [];
    syncRows($("#servers-table tbody"), list, (x) => x.name, createRow, updateRow);
    $("#servers-empty").hidden = list.length > 0;
    if (panel.server && !list.some((x) => x.name === panel.server)) {
      closeTry();
      parkTryForm();
      setText($("#server-tools-note"), `Server ${panel.server} is no longer registered.`);
      replaceChildren($("#server-tools-list"));
      panel.tools = [];
    }
  },
};

