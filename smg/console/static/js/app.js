// The console shell: login, hash routing (#/workers ...), polling of the visible page every 2 s (paused
// while the tab is hidden), the confirmation dialog. A 401 from any admin call returns to the login.

import { ApiError, getSession, login, logout, setUnauthorizedHandler } from "./api.js";
import { setText } from "./dom.js";
import overview from "./pages/overview.js";
import workers from "./pages/workers.js";
import servers from "./pages/servers.js";
import loops from "./pages/loops.js";
import keys from "./pages/keys.js";

const PAGES = { overview, workers, servers, loops, keys };
const DEFAULT_PAGE = "overview";
const POLL_MS = 2000;

const $ = (selector) => document.querySelector(selector);

const state = {
  active: false, // the console (not the login) is shown
  keyRequired: true,
  page: null,
  timer: null,
  generation: 0,
};

// ---- polling -------------------------------------------------------------------------------------

function schedule(delay) {
  clearTimeout(state.timer);
  state.timer = null;
  if (!state.active || document.hidden) return;
  state.timer = setTimeout(tick, delay);
}

function stopPolling() {
  clearTimeout(state.timer);
  state.timer = null;
  state.generation += 1; // answers still in flight are dropped
}

/** Poll the visible page now (after an action), then every POLL_MS. */
function pollNow() {
  schedule(0);
}

async function tick() {
  state.timer = null;
  if (!state.active || document.hidden) return;
  const generation = ++state.generation;
  const isCurrent = () => state.active && generation === state.generation;
  const page = PAGES[state.page];
  try {
    await page.refresh(isCurrent);
    if (!isCurrent()) return;
    const now = new Date();
    const stamp = $("#last-updated");
    setText(stamp, now.toLocaleTimeString(undefined, { hour12: false }));
    stamp.setAttribute("datetime", now.toISOString());
    setText($("#poll-error"), "");
  } catch (err) {
    if (!isCurrent()) return;
    if (err instanceof ApiError && err.status === 401) return; // the unauthorized handler took over
    setText($("#poll-error"), `Could not refresh: ${err && err.message ? err.message : err}`);
    if (!(err instanceof ApiError)) console.debug(err); // a bug in the page's code, not the gateway
  } finally {
    if (isCurrent()) schedule(POLL_MS);
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) {
    clearTimeout(state.timer);
    state.timer = null;
  } else if (state.active) {
    pollNow();
  }
});

// ---- routing -------------------------------------------------------------------------------------

function pageFromHash() {
  const match = /^#\/([a-z]+)/.exec(location.hash);
  return match && PAGES[match[1]] ? match[1] : null;
}

function showPage(name, focusHeading) {
  state.page = name;
  for (const link of document.querySelectorAll("nav a[data-page]")) {
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const key of Object.keys(PAGES)) {
    $(`#page-${key}`).hidden = key !== name;
  }
  const heading = $(`#page-${name} h2`);
  document.title = `${heading.textContent} · smg console`;
  if (focusHeading) heading.focus();
  stopPolling();
  pollNow();
}

window.addEventListener("hashchange", () => {
  if (!state.active) return;
  const name = pageFromHash();
  if (name) showPage(name, true);
});

// ---- login and session ---------------------------------------------------------------------------

function showLogin(message) {
  state.active = false;
  stopPolling();
  $("#console").hidden = true;
  $("#login-main").hidden = false;
  $("#login").hidden = false;
  setText($("#login-error"), message);
  document.title = "Sign in · smg console";
  $("#login-key").focus();
}

function enterConsole() {
  state.active = true;
  $("#login").hidden = true;
  $("#login-main").hidden = true;
  $("#console").hidden = false;
  $("#logout").hidden = !state.keyRequired;
  setText($("#poll-error"), "");
  let name = pageFromHash();
  if (!name) {
    name = DEFAULT_PAGE;
    history.replaceState(null, "", `#/${name}`);
  }
  showPage(name, false);
}

async function onLogin(event) {
  event.preventDefault();
  const input = $("#login-key");
  const button = $("#login-submit");
  const key = input.value;
  if (!key) {
    setText($("#login-error"), "Enter the admin key.");
    input.focus();
    return;
  }
  button.disabled = true;
  setText($("#login-error"), "");
  try {
    await login(key);
    input.value = "";
    const session = await getSession();
    state.keyRequired = Boolean(session.key_required);
    if (session.authenticated) {
      enterConsole();
    } else {
      showLogin("The gateway accepted the key but did not keep the session: are cookies blocked?");
    }
  } catch (err) {
    input.value = "";
    setText($("#login-error"), err instanceof ApiError ? err.message : String(err));
    input.focus();
  } finally {
    button.disabled = false;
  }
}

async function onLogout() {
  try {
    await logout();
  } catch (err) {
    // The cookie may already be gone; the login page is right either way.
    console.debug(err);
  }
  showLogin("");
}

setUnauthorizedHandler(() => {
  if (state.active) showLogin("Your session has ended. Sign in again.");
});

// ---- confirmation dialog -------------------------------------------------------------------------

/** Ask before an action that changes the gateway: resolves true for "yes", false for "no", Escape or
 * closing. ``danger``: the "yes" button looks destructive (a removal) rather than primary (an addition). */
function confirmAction(message, yesLabel = "Remove", danger = true) {
  const dialog = $("#confirm-dialog");
  if (dialog.open) return Promise.resolve(false);
  const opener = document.activeElement;
  setText($("#confirm-message"), message);
  setText($("#confirm-yes"), yesLabel);
  $("#confirm-yes").classList.toggle("danger", danger);
  $("#confirm-yes").classList.toggle("primary", !danger);
  dialog.returnValue = "";
  dialog.showModal();
  $("#confirm-no").focus();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        resolve(dialog.returnValue === "yes");
        if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
      },
      { once: true },
    );
  });
}

// ---- start ---------------------------------------------------------------------------------------

async function start() {
  $("#login-form").addEventListener("submit", onLogin);
  $("#logout").addEventListener("click", onLogout);
  $(".skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    $("#content").focus();
  });
  const ctx = { confirm: confirmAction, pollNow };
  for (const page of Object.values(PAGES)) page.init(ctx);

  let session;
  try {
    session = await getSession();
  } catch (err) {
    showLogin(err instanceof ApiError ? err.message : String(err));
    return;
  }
  state.keyRequired = Boolean(session.key_required);
  if (session.authenticated) enterConsole();
  else showLogin("");
}

start();
