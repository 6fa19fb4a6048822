// Workers: GET /workers (health, breaker and its last transition, in flight, recent errors),
// POST /workers to add one and DELETE /workers/{id} to remove one, each after a confirmation.

import { api, ApiError, seg } from "../api.js";
import { cell, h, localDateTime, replaceChildren, setBadge, setText, syncRows, timeEl } from "../dom.js";

const $ = (selector) => document.querySelector(selector);
const FIELDS = ["url", "models", "health", "breaker", "breaker_changed", "in_flight", "errors"];
let ctx = null;

function createRow(worker) {
  const row = h("tr", { dataset: { workerId: worker.id } });
  for (const field of FIELDS) {
    row.append(h("td", { class: `f-${field}`, dataset: { field } }));
  }
  const remove = h("button", { type: "button", class: "danger small", dataset: { action: "remove-worker" } }, "Remove");
  row.append(h("td", { class: "actions" }, remove));
  return row;
}

function errorsList(errors) {
  return h(
    "ul",
    { class: "compact" },
    errors.map((e) =>
      h(
        "li",
        {},
        timeEl(e.at, true),
        " ",
        e.status !== null && e.status !== undefined ? `${e.status} ` : "",
        e.error,
      ),
    ),
  );
}

function updateRow(row, worker) {
  row.dataset.workerId = worker.id;
  setText(cell(row, "url"), worker.url);
  const models = cell(row, "models");
  const modelsText = Array.isArray(worker.models) ? worker.models.join(", ") || "none" : "not discovered yet";
  if (models.dataset.signature !== modelsText) {
    models.dataset.signature = modelsText;
    if (Array.isArray(worker.models) && worker.models.length) {
      // One model a line, never broken inside (names like "fragile-model" break at the hyphen otherwise).
      replaceChildren(models, worker.models.map((name) => h("span", { class: "model-name" }, name)));
    } else {
      replaceChildren(models, modelsText);
    }
  }
  setBadge(cell(row, "health"), worker.healthy ? "healthy" : "unhealthy");
  setBadge(cell(row, "breaker"), worker.circuit_breaker);
  const changed = cell(row, "breaker_changed");
  const changedText = worker.breaker_changed_at ? localDateTime(worker.breaker_changed_at) : "never";
  if (changed.textContent !== changedText) replaceChildren(changed, timeEl(worker.breaker_changed_at, true) || "never");
  setText(cell(row, "in_flight"), worker.in_flight);

  const errors = Array.isArray(worker.recent_errors) ? worker.recent_errors : [];
  const errorsCell = cell(row, "errors");
  const signature = JSON.stringify(errors);
  if (errorsCell.dataset.signature !== signature) {
    errorsCell.dataset.signature = signature;
    if (!errors.length) {
      replaceChildren(errorsCell, "none");
    } else {
      const details = errorsCell.querySelector("details");
      const open = details ? details.open : false;
      const summary = h("summary", {}, `${errors.length} recent: ${errors[0].error}`);
      const fresh = h("details", {}, summary, errorsList(errors));
      fresh.open = open;
      replaceChildren(errorsCell, fresh);
    }
  }
  const button = row.querySelector('[data-action="remove-worker"]');
  button.setAttribute("aria-label", `Remove worker ${worker.url}`);
  button.dataset.url = worker.url;
}

async function removeWorker(button) {
  const row = button.closest("tr");
  const id = row.dataset.workerId;
  const url = button.dataset.url;
  const status = $("#workers-status");
  if (!(await ctx.confirm(`Remove worker ${url}? Requests in flight finish; no new requests go to it.`, "Remove worker"))) {
    return;
  }
  try {
    await api("DELETE", `workers/${seg(id)}`);
    setText(status, `Removed worker ${url}.`);
    $("#page-workers-title").focus(); // the focused button leaves with its row
  } catch (err) {
    setText(status, `Could not remove worker ${url}: ${err.message}`);
  }
  ctx.pollNow();
}

async function addWorker(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const url = $("#worker-url").value.trim();
  const key = $("#worker-api-key").value;
  const status = $("#worker-add-status");
  if (!url) {
    setText(status, "Enter the worker's URL.");
    $("#worker-url").focus();
    return;
  }
  const question = `Add worker ${url} to the pool? Requests for its models are routed to it once it answers.`;
  if (!(await ctx.confirm(question, "Add worker", false))) {
    setText(status, "Not added.");
    return;
  }
  const body = { url };
  if (key) body.api_key = key;
  const submit = form.querySelector('button[type="submit"]');
  submit.disabled = true;
  setText(status, `Adding ${url}…`);
  try {
    const worker = await api("POST", "workers", body);
    form.reset();
    setText(status, `Added worker ${worker.url} (id ${worker.id}).`);
  } catch (err) {
    $("#worker-api-key").value = "";
    setText(status, `Not added: ${err instanceof ApiError ? err.message : String(err)}`);
  } finally {
    submit.disabled = false;
  }
  ctx.pollNow();
}

export default {
  init(context) {
    ctx = context;
    $("#worker-add-form").addEventListener("submit", addWorker);
    $("#workers-table tbody").addEventListener("click", (event) => {
      const button = event.target.closest('button[data-action="remove-worker"]');
      if (button) removeWorker(button);
    });
  },

  async refresh(isCurrent) {
    const data = await api("GET", "workers");
    if (!isCurrent()) return;
    const list = Array.isArray(data.workers) ? data.workers : [];
    syncRows($("#workers-table tbody"), list, (w) => w.id, createRow, updateRow);
    $("#workers-empty").hidden = list.length > 0;
  },
};
