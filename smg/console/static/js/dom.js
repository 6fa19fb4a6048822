// Small DOM helpers. Data from the gateway (names, descriptions, errors: some come from MCP servers)
// only ever reaches the page as text nodes: never as markup.

/** Create an element: ``h("td", {class: "x", dataset: {field: "url"}}, "text", childNode)``. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "class") {
      el.className = value;
    } else if (name.startsWith("on")) {
      el.addEventListener(name.slice(2), value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Set an element's text, touching the DOM only when it changes (keeps selection and screen readers calm). */
export function setText(el, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (el.textContent !== value) el.textContent = value;
}

/** Replace an element's children. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** Set ``className`` only when it changes. */
export function setClass(el, className) {
  if (el.className !== className) el.className = className;
}

/**
 * Make ``tbody``'s rows match ``items`` in order, keyed by ``keyOf(item)``: a row that stays is updated in
 * place (``update(row, item)``), so focus on its buttons survives a poll; new rows come from
 * ``create(item)``; rows whose key is gone are removed.
 */
export function syncRows(tbody, items, keyOf, create, update) {
  const existing = new Map();
  for (const row of Array.from(tbody.rows)) existing.set(row.dataset.key, row);
  const keep = new Set();
  items.forEach((item, index) => {
    const key = keyOf(item);
    let row = existing.get(key);
    if (!row) {
      row = create(item);
      row.dataset.key = key;
    }
    keep.add(key);
    update(row, item);
    const at = tbody.rows[index];
    if (at !== row) tbody.insertBefore(row, at || null);
  });
  for (const [key, row] of existing) {
    if (!keep.has(key)) row.remove();
  }
}

/** The cell ``[data-field=name]`` of a row. */
export function cell(row, name) {
  return row.querySelector(`[data-field="${name}"]`);
}

const TIME = { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };

/** Local wall-clock time (HH:MM:SS) of a Unix time in seconds. */
export function localTime(unixSeconds) {
  if (unixSeconds === null || unixSeconds === undefined) return "";
  return new Date(unixSeconds * 1000).toLocaleTimeString(undefined, TIME);
}

/** Local date and time of a Unix time in seconds or an ISO string; today's only as a time. */
export function localDateTime(value) {
  if (value === null || value === undefined) return "";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const now = new Date();
  if (date.toDateString() === now.toDateString()) return date.toLocaleTimeString(undefined, TIME);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium", hour12: false });
}

/** ISO 8601 for a <time datetime>. */
export function isoTime(value) {
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

/** A <time> element showing a local time, with the ISO value as its machine-readable datetime. */
export function timeEl(value, withDate = false) {
  if (value === null || value === undefined) return null;
  return h("time", { datetime: isoTime(value) }, withDate ? localDateTime(value) : localTime(value));
}

/** Milliseconds for display: one decimal below 10 ms, whole above. */
export function ms(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return value < 10 ? value.toFixed(1) : String(Math.round(value));
}

/** A count with thousands separators. */
export function count(value) {
  return value === null || value === undefined ? "–" : Number(value).toLocaleString();
}

/** A state badge: the state's own word as text, its colour from the class ``state-<word>``. */
export function badge(word, extraClass = "") {
  return h("span", { class: `badge state-${String(word).replace(/[^a-z_-]/gi, "")} ${extraClass}`.trim() }, word);
}

/** Put a badge for ``word`` in ``el`` unless it already shows it. */
export function setBadge(el, word) {
  const current = el.firstElementChild;
  if (current && current.textContent === word && el.childNodes.length === 1) return;
  replaceChildren(el, badge(word));
}
