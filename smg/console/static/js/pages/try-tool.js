// "Try a tool": a JSON arguments form for one tool of the tools panel. The arguments are parsed and
// validated against the tool's input schema (schema.js) before anything is sent: a syntax error or a
// schema error is listed in #try-errors and nothing leaves the page; a valid call is
// POST /mcp/servers/{server}/tools/{tool}/call, its answer shown in #try-result.

import { api, ApiError, seg } from "../api.js";
import { h, replaceChildren, setText } from "../dom.js";
import { skeleton, validate } from "../schema.js";

const $ = (selector) => document.querySelector(selector);
const current = { server: null, tool: null, busy: false };

/** Put the form back at the end of the panel (out of the list, which is about to change). */
export function parkTryForm() {
  const form = $("#try-form");
  if (form.parentElement !== $("#server-tools")) $("#server-tools").append(form);
}

/** The panel now lists ``tools`` of ``server``: keep the form under its tool, or close it. */
export function reattachTry(server, tools) {
  const still = current.tool && current.server === server && tools.find((t) => t.name === current.tool.name);
  if (still) {
    current.tool = still;
    $("#server-tools-list").querySelector(`li[data-tool="${CSS.escape(still.name)}"]`).append($("#try-form"));
  } else if (current.tool) {
    closeTry();
  }
}

function schemaOf(tool) {
  return tool.input_schema && typeof tool.input_schema === "object" ? tool.input_schema : { type: "object" };
}

/** Open the form for ``tool`` of ``server``, under the tool's item in the list. */
export function openTry(server, tool) {
  current.server = server;
  current.tool = tool;
  setText($("#try-title"), `Try ${server}/${tool.name}`);
  setText($("#try-description"), tool.destructive ? "This tool says it is destructive: calling it may change things." : "");
  $("#try-arguments").value = JSON.stringify(skeleton(schemaOf(tool)), null, 2);
  fitRows();
  replaceChildren($("#try-errors"));
  $("#try-result").hidden = true;
  const item = $("#server-tools-list").querySelector(`li[data-tool="${CSS.escape(tool.name)}"]`);
  if (item) item.append($("#try-form"));
  $("#try-form").hidden = false;
  $("#try-arguments").focus();
}

/** Hide the form (its errors and result too). */
export function closeTry() {
  current.tool = null;
  $("#try-form").hidden = true;
  replaceChildren($("#try-errors"));
  $("#try-result").hidden = true;
}

/**
 * Size the arguments box to its text (a few rows, at most a dozen: longer text scrolls), so the call's
 * answer stays in view below it. A height the user set by dragging the box's corner wins over ``rows``.
 */
function fitRows() {
  const area = $("#try-arguments");
  const lines = area.value.split("\n").length;
  const rows = Math.min(Math.max(lines, 2), 12);
  if (area.rows !== rows) area.rows = rows;
}

function showErrors(messages) {
  replaceChildren($("#try-errors"), messages.map((m) => h("li", {}, m)));
  $("#try-arguments").setAttribute("aria-invalid", messages.length ? "true" : "false");
}

function showResult(statusWord, text, detail) {
  const result = $("#try-result");
  const statusEl = result.querySelector('[data-field="status"]');
  setText(statusEl, statusWord);
  statusEl.className = `badge state-${statusWord.replace(/[^a-z_]/gi, "_")}`;
  setText(result.querySelector('[data-field="duration"]'), detail);
  setText(result.querySelector('[data-field="text"]'), text);
  result.hidden = false;
}

async function submitTry(event) {
  event.preventDefault();
  const { tool, server } = current;
  if (!tool || !server || current.busy) return;
  let args;
  try {
    args = JSON.parse($("#try-arguments").value);
  } catch (err) {
    showErrors([`JSON syntax error: ${err.message}`]);
    return;
  }
  const errors = [];
  if (args === null || typeof args !== "object" || Array.isArray(args)) errors.push("$: expected object");
  else errors.push(...validate(schemaOf(tool), args));
  if (errors.length) {
    showErrors(errors);
    $("#try-result").hidden = true;
    return;
  }
  showErrors([]);
  // Busy, not disabled: disabling the focused button would drop the keyboard focus to the page.
  const submit = $("#try-submit");
  current.busy = true;
  submit.setAttribute("aria-disabled", "true");
  showResult("running", "", "");
  try {
    const out = await api("POST", `mcp/servers/${seg(server)}/tools/${seg(tool.name)}/call`, { arguments: args });
    const millis = typeof out.duration === "number" ? Math.round(out.duration * 1000) : null;
    const attempts = out.attempts > 1 ? `, ${out.attempts} attempts` : "";
    // An answer that arrives after the form moved on to another tool (or closed) is not shown.
    if (current.tool === tool) showResult(out.status, out.text ?? "", millis === null ? "" : `in ${millis} ms${attempts}`);
  } catch (err) {
    const text = err instanceof ApiError ? err.message : String(err);
    if (current.tool === tool) showResult("refused", text, err.status ? `HTTP ${err.status}` : "");
  } finally {
    current.busy = false;
    submit.removeAttribute("aria-disabled");
  }
  // The answer to the call just submitted: bring it into view (scrolling only: focus stays where it is).
  if (current.tool === tool && !$("#try-result").hidden) {
    $("#try-result").scrollIntoView({ block: "nearest", inline: "nearest" });
  }
}

/** Wire the form's submit and close buttons (once). */
export function initTry() {
  $("#try-form").addEventListener("submit", submitTry);
  $("#try-arguments").addEventListener("input", fitRows);
  $("#try-cancel").addEventListener("click", () => {
    const name = current.tool ? current.tool.name : null;
    closeTry();
    const back = name && $("#server-tools-list").querySelector(`li[data-tool="${CSS.escape(name)}"] button`);
    if (back) back.focus();
  });
}
