// Keys: GET /keys: names, state, scopes and expiry of the stored API keys (never a value).

import { api, ApiError } from "../api.js";
import { badge, h, replaceChildren, setText, timeEl } from "../dom.js";

const $ = (selector) => document.querySelector(selector);

function names(list, none) {
  if (list === null || list === undefined) return h("span", { class: "muted" }, none);
  return list.join(", ");
}

function row(key) {
  const td = (field, ...children) => h("td", { class: `f-${field}`, dataset: { field } }, ...children);
  return h(
    "tr",
    { dataset: { key: key.name } },
    h("th", { scope: "row" }, key.name),
    td("state", badge(key.state)),
    td("servers", names(key.servers, "all")),
    td("tools", names(key.tools, "all")),
    td("models", names(key.models, "all")),
    td("rpm", key.rpm === null || key.rpm === undefined ? h("span", { class: "muted" }, "no limit") : String(key.rpm)),
    td("expires_at", key.expires_at ? timeEl(key.expires_at, true) : h("span", { class: "muted" }, "never")),
  );
}

export default {
  init() {},

  async refresh(isCurrent) {
    let data;
    const empty = $("#keys-empty");
    try {
      data = await api("GET", "keys");
    } catch (err) {
      // A gateway without a key store answers 503: that is a state to show, not a failed poll.
      if (!(err instanceof ApiError) || err.status !== 503 || !isCurrent()) throw err;
      replaceChildren($("#keys-table tbody"));
      $("#keys-table tbody").dataset.signature = "";
      setText(empty, `No keys to show: ${err.message}.`);
      empty.hidden = false;
      return;
    }
    if (!isCurrent()) return;
    const keys = Array.isArray(data.keys) ? data.keys : [];
    const tbody = $("#keys-table tbody");
    const signature = JSON.stringify(keys);
    if (tbody.dataset.signature !== signature) {
      tbody.dataset.signature = signature;
      replaceChildren(tbody, keys.map(row));
    }
    setText(empty, "No keys are stored.");
    empty.hidden = keys.length > 0;
  },
};
