"""The operator console in headless Chromium against a real gateway, two scripted workers and two MCP
servers (``calc`` over stdio, ``faults`` over streamable HTTP): log in, what each page shows and how it
changes without a reload (a breaker opening, a tool loop appearing), the actions (try a tool, remove and
re-add a server, refresh one, add and remove a worker), a refused key and what is never stored, the
cookie, a session that ends, the keyboard and a narrow window. Every test also checks (`Ui.assert_clean`)
that the page logged no console error or warning and sent no request outside the gateway's own origin
on 127.0.0.1.

Screenshots of each page are written to env ``SMG_CONSOLE_SCREENSHOTS`` (``docs/console`` regenerates
the ones of docs/console.md) or a temporary directory."""

from __future__ import annotations

import re
import sys
import uuid

import httpx
import pytest

from smg.testing.processes import stop
from tests._procs import Procs, poll
from tests.console.conftest import (
    ADMIN_KEY,
    CALC,
    DATA_KEY,
    WAIT_MS,
    Ui,
    require_playwright,
    wait_breaker_open,
)

require_playwright()

from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.e2e

CALC_ONLY = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
BOTH = [*CALC_ONLY, {"type": "mcp", "server_label": "faults", "require_approval": "never"}]


def _storage_and_cookie(ui: Ui) -> dict[str, object]:
    return dict(
        ui.page.evaluate(
            "() => ({cookie: document.cookie,"
            " local: Object.entries(localStorage), session: Object.entries(sessionStorage)})"
        )
    )


def _assert_key_nowhere(ui: Ui, key: str) -> None:
    """The key is in no URL, header, page HTML, script-readable cookie or web storage."""
    stored = _storage_and_cookie(ui)
    assert stored == {"cookie": "", "local": [], "session": []}, stored
    assert key not in ui.page.content()
    assert all(key not in url for _, url in ui.requests)
    assert all(key not in value for headers in ui.headers for value in headers.values())
    assert key not in ui.page.url
    assert all(key not in cookie.get("value", "") for cookie in ui.context.cookies())


def test_a_wrong_key_is_refused_shows_the_error_and_stores_nothing(ui: Ui) -> None:
    ui.expected_statuses.update({401, 403})
    shell = ui.open()
    assert shell.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self';")
    assert "key" not in shell.url and ADMIN_KEY not in shell.url
    expect(ui.page.locator("#login")).to_be_visible()
    expect(ui.page.locator("#console")).to_be_hidden()
    for key, status in (("not-the-admin-key", 401), (DATA_KEY, 403)):
        refused = httpx.post(f"{ui.stack.url}/ui/session", json={"key": key}, timeout=30)
        assert refused.status_code == status, refused.text
        ui.page.locator("#login-key").fill(key)
        ui.page.locator("#login-submit").click()
        expect(ui.page.locator("#login-error")).to_contain_text(refused.json()["error"]["message"])
        expect(ui.page.locator("#console")).to_be_hidden()
        _assert_key_nowhere(ui, key)
        assert ui.context.cookies() == []
        if status == 401:
            ui.shot("login")
    assert [u for m, u in ui.requests if m == "POST"] == [f"{ui.stack.url}/ui/session"] * 2
    ui.assert_clean()


def test_login_with_the_admin_key_shows_workers_and_servers_and_keeps_the_key_out_of_reach(ui: Ui) -> None:
    ui.login()
    expect(ui.page.locator("#login")).to_be_hidden()
    expect(ui.page.locator("#login-key")).to_have_value("")
    [cookie] = ui.context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == ("smg_console", True, "Strict")
    assert cookie["value"] != ADMIN_KEY
    _assert_key_nowhere(ui, ADMIN_KEY)

    ui.go("workers")
    for url in (ui.stack.worker_url, ui.stack.fragile_url):
        row = ui.page.locator(f'#workers-table tr[data-worker-id="{ui.stack.worker_id(url)}"]')
        expect(row.locator('td[data-field="url"]')).to_have_text(url)
        expect(row.locator('td[data-field="health"]')).to_have_text("healthy")
        expect(row.locator('td[data-field="breaker"]')).to_have_text(re.compile(r"^(closed|open|half_open)$"))
    ui.go("servers")
    for name, transport in (("calc", "stdio"), ("faults", "streamable-http")):
        row = ui.page.locator(f'#servers-table tr[data-server="{name}"]')
        expect(row.locator('td[data-field="transport"]')).to_have_text(transport)
        expect(row.locator('td[data-field="state"]')).to_have_text("connected")
    expect(ui.page.locator('a[data-page="servers"]')).to_have_attribute("aria-current", "page")
    _assert_key_nowhere(ui, ADMIN_KEY)
    admin_calls = 0
    for (method, url), headers in zip(ui.requests, ui.headers, strict=True):
        assert "authorization" not in headers and "x-api-key" not in headers, (method, url)
        if not url.startswith(f"{ui.stack.url}/ui"):
            admin_calls += 1
            assert headers.get("x-smg-console") == "1", (method, url)
    assert admin_calls >= 2
    ui.assert_clean()


def test_a_breaker_opened_by_a_failing_worker_shows_open_without_a_reload(ui: Ui) -> None:
    ui.login()
    ui.go("workers")
    row = ui.page.locator(f'#workers-table tr[data-worker-id="{ui.stack.worker_id(ui.stack.fragile_url)}"]')
    expect(row.locator('td[data-field="breaker"]')).to_have_text("closed")
    ui.mark()
    assert httpx.post(f"{ui.stack.fragile_url}/_smg/faults", json={"status": 500}).status_code == 200
    wait_breaker_open(ui.stack, ui.stack.fragile_url)

    expect(row.locator('td[data-field="breaker"]')).to_have_text("open", timeout=WAIT_MS)
    expect(row.locator('td[data-field="breaker_changed"]')).not_to_have_text(re.compile(r"^\s*$"))
    expect(row.locator('td[data-field="errors"]')).to_contain_text("500")
    ui.assert_not_reloaded()
    ui.shot("workers")
    ui.assert_clean()


def test_try_a_tool_validates_before_sending_and_shows_the_answer(ui: Ui) -> None:
    ui.login()
    ui.go("servers")
    ui.page.locator('tr[data-server="calc"] button[data-action="show-tools"]').click()
    panel = ui.page.locator("#server-tools")
    expect(panel).to_be_visible()
    expect(panel.locator("h3")).to_contain_text("calc")
    tool = panel.locator('[data-tool="evaluate"]')
    expect(tool.locator('[data-hint="read_only"]')).to_be_visible()
    expect(tool.locator('[data-hint="idempotent"]')).to_be_visible()
    expect(tool.locator('[data-hint="destructive"]')).to_have_count(0)
    ui.shot("servers")
    tool.locator('button[data-action="try-tool"]').click()

    arguments = ui.page.locator("#try-arguments")
    expect(arguments).to_be_visible()
    for invalid, message in (("{}", "expression"), ('{"expression": 5}', "expression"), ("[1,", "")):
        arguments.fill(invalid)
        ui.page.locator("#try-submit").click()
        expect(ui.page.locator("#try-errors li").first).to_contain_text(message)
    assert ui.posts("/tools/") == [], "an invalid call was sent"

    arguments.fill('{"expression": "6*7"}')
    ui.page.locator("#try-submit").click()
    result = ui.page.locator("#try-result")
    expect(result.locator('[data-field="status"]')).to_have_text("ok")
    expect(result.locator('[data-field="text"]')).to_have_text("42")
    expect(ui.page.locator("#try-errors li")).to_have_count(0)
    assert ui.posts("/tools/") == [f"{ui.stack.url}/mcp/servers/calc/tools/evaluate/call"]
    result.scroll_into_view_if_needed()
    ui.shot("servers-try")

    arguments.fill('{"expression": "1/0"}')  # valid arguments, refused by the tool itself
    ui.page.locator("#try-submit").click()
    expect(result.locator('[data-field="status"]')).to_have_text("error")
    expect(result.locator('[data-field="text"]')).to_contain_text("zero")
    assert len(ui.posts("/tools/")) == 2
    ui.assert_clean()


def test_a_removed_server_is_gone_after_confirming_and_comes_back_through_the_form(ui: Ui) -> None:
    ui.login()
    ui.go("servers")
    row = ui.page.locator('#servers-table tr[data-server="calc"]')
    dialog = ui.page.locator("#confirm-dialog")
    remove = row.locator('button[data-action="remove-server"]')

    remove.click()
    expect(dialog).to_be_visible()
    expect(ui.page.locator("#confirm-message")).to_contain_text("calc")
    ui.page.locator("#confirm-no").click()
    expect(dialog).to_be_hidden()
    remove.click()
    expect(dialog).to_be_visible()
    ui.page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert not [u for m, u in ui.requests if m == "DELETE"], "removed without confirmation"
    expect(row).to_be_visible()

    remove.click()
    ui.page.locator("#confirm-yes").click()
    expect(row).to_have_count(0)
    with ui.stack.admin() as admin:
        assert admin.get("/mcp/servers/calc").status_code == 404

    ui.page.locator("#server-name").fill("calc")
    ui.page.locator("#server-transport").select_option("stdio")
    ui.page.locator("#server-command").fill(sys.executable)
    ui.page.locator("#server-args").fill("\n".join(CALC["args"]))
    ui.page.locator('#server-add-form button[type="submit"]').click()
    expect(row.locator('td[data-field="state"]')).to_have_text("connected")
    expect(ui.page.locator("#server-add-status")).not_to_have_text(re.compile(r"^\s*$"))
    with ui.stack.admin() as admin:
        again = admin.get("/mcp/servers/calc").json()
    assert (again["transport"], again["command"], again["args"]) == ("stdio", sys.executable, CALC["args"])
    assert again["status"]["state"] == "connected"
    ui.assert_clean()


def test_a_worker_is_added_through_the_form_and_removed_each_after_confirming(ui: Ui, procs: Procs) -> None:
    url = procs.worker("--model", "extra-model")[1]
    ui.login()
    ui.go("workers")
    ui.page.locator("#worker-url").fill(url)
    ui.page.locator('#worker-add-form button[type="submit"]').click()
    expect(ui.page.locator("#confirm-dialog")).to_be_visible()
    expect(ui.page.locator("#confirm-message")).to_contain_text(url)
    ui.page.locator("#confirm-no").click()  # declined: nothing is sent
    expect(ui.page.locator("#worker-add-status")).to_have_text("Not added.")
    assert ui.posts("/workers") == [] and _listed(ui, url) is None
    ui.page.locator('#worker-add-form button[type="submit"]').click()
    expect(ui.page.locator("#confirm-message")).to_contain_text(url)
    ui.page.locator("#confirm-yes").click()
    expect(ui.page.locator("#worker-add-status")).to_contain_text("Added worker")
    worker_id = poll(lambda: _listed(ui, url), timeout=30)
    row = ui.page.locator(f'#workers-table tr[data-worker-id="{worker_id}"]')
    expect(row.locator('td[data-field="url"]')).to_have_text(url)
    expect(row.locator('td[data-field="models"]')).to_contain_text("extra-model")
    expect(row.locator('td[data-field="breaker"]')).to_have_text("closed")

    row.locator('button[data-action="remove-worker"]').click()
    expect(ui.page.locator("#confirm-dialog")).to_be_visible()
    expect(ui.page.locator("#confirm-message")).to_contain_text(url)
    ui.page.locator("#confirm-yes").click()
    expect(row).to_have_count(0)
    assert _listed(ui, url) is None
    assert [u for m, u in ui.requests if m == "DELETE"] == [f"{ui.stack.url}/workers/{worker_id}"]
    ui.assert_clean()


def _listed(ui: Ui, url: str) -> str | None:
    with ui.stack.admin() as admin:
        workers = admin.get("/workers").json()["workers"]
    return next((str(w["id"]) for w in workers if w["url"] == url), None)


def test_refreshing_a_server_lists_its_tools_again(ui: Ui) -> None:
    ui.login()
    ui.go("servers")
    ui.page.locator('tr[data-server="faults"] button[data-action="refresh-server"]').click()
    expect(ui.page.locator("#servers-status")).to_contain_text("faults")
    assert ui.posts("/refresh") == [f"{ui.stack.url}/mcp/servers/faults/refresh"]
    expect(ui.page.locator('tr[data-server="faults"] td[data-field="state"]')).to_have_text("connected")
    ui.assert_clean()


def test_a_server_whose_process_stops_shows_its_state_and_last_error_without_a_reload(
    ui: Ui, procs: Procs
) -> None:
    proc, url = procs.mcp_faults()
    with ui.stack.admin() as admin:
        server = {"name": "doomed", "transport": "streamable-http", "url": url}
        added = admin.post("/mcp/servers", json=server)
        assert added.status_code == 201, added.text
    try:
        ui.login()
        ui.go("servers")
        row = ui.page.locator('#servers-table tr[data-server="doomed"]')
        expect(row.locator('td[data-field="state"]')).to_have_text("connected")
        ui.mark()
        stop(proc)
        row.locator('button[data-action="refresh-server"]').click()
        with ui.stack.admin() as admin:
            status = poll(lambda: _failed_status(admin), timeout=60)
        expect(row.locator('td[data-field="state"]')).to_have_text(status["state"])
        expect(row.locator('td[data-field="last_error"]')).to_contain_text("ConnectError")
        ui.assert_not_reloaded()
        ui.assert_clean()
    finally:
        with ui.stack.admin() as admin:
            admin.delete("/mcp/servers/doomed")


def _failed_status(admin: httpx.Client) -> dict[str, object] | None:
    status: dict[str, object] = admin.get("/mcp/servers/doomed").json()["status"]
    return status if status["state"] != "connected" and status["last_error"] else None


def test_a_session_that_ends_returns_the_page_to_the_login(ui: Ui) -> None:
    ui.expected_statuses.add(401)
    ui.login()
    ui.go("workers")
    ui.mark()
    ui.context.clear_cookies()  # as when the token expires or the admin key changes
    expect(ui.page.locator("#login")).to_be_visible()
    expect(ui.page.locator("#console")).to_be_hidden()
    ui.assert_not_reloaded()
    ui.page.locator("#login-key").fill(ADMIN_KEY)
    ui.page.locator("#login-submit").click()
    expect(ui.page.locator("#console")).to_be_visible()
    ui.assert_clean()


def test_a_refused_server_shows_the_apis_message(ui: Ui) -> None:
    ui.expected_statuses.update({400, 409, 422})
    ui.login()
    ui.go("servers")
    ui.page.locator("#server-name").fill("faults")
    ui.page.locator("#server-transport").select_option("streamable-http")
    ui.page.locator("#server-url").fill(ui.stack.faults_url)
    ui.page.locator('#server-add-form button[type="submit"]').click()
    with ui.stack.admin() as admin:
        refused = admin.post(
            "/mcp/servers",
            json={"name": "faults", "transport": "streamable-http", "url": ui.stack.faults_url},
        )
    assert refused.status_code >= 400
    expect(ui.page.locator("#server-add-status")).to_contain_text(refused.json()["error"]["message"])
    ui.assert_clean()


def test_a_tool_loop_through_the_gateway_appears_in_the_loops_table_without_a_reload(ui: Ui) -> None:
    ui.login()
    ui.go("loops")
    ui.mark()
    request_id = f"console-loop-{uuid.uuid4().hex[:8]}"
    script = 'CALL calc__evaluate {"expression": "6*7"}\nCALL faults__pid {}'
    answered = ui.stack.chat(script, tools=BOTH, headers={"X-Request-Id": request_id})
    assert answered.status_code == 200, answered.text

    row = ui.page.locator(f'#loops-table tr[data-request-id="{request_id}"]')
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row.locator('td[data-field="endpoint"]')).to_have_text("chat.completions")
    expect(row.locator('td[data-field="model"]')).to_have_text("mock-model")
    expect(row.locator('td[data-field="iterations"]')).to_have_text("2")
    expect(row.locator('td[data-field="stop_reason"]')).to_have_text("completed")
    expect(row.locator('td[data-field="request_id"]')).to_have_text(request_id)
    calls = row.locator('td[data-field="calls"]')
    expect(calls).to_contain_text(re.compile(r"calc/evaluate ok \d+ ms"))
    expect(calls).to_contain_text(re.compile(r"faults/pid ok \d+ ms"))
    expect(ui.page.locator("#loops-table tbody tr").first).to_have_attribute("data-request-id", request_id)
    ui.assert_not_reloaded()
    ui.shot("loops")
    ui.assert_clean()


def test_the_keys_page_lists_a_key_created_with_the_admin_api_and_never_its_value(ui: Ui) -> None:
    with ui.stack.admin() as admin:
        created = admin.post("/keys", json={"name": "console-team", "servers": ["calc"], "rpm": 60})
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    ui.login()
    ui.go("keys")
    row = ui.page.locator('#keys-table tr[data-key="console-team"]')
    expect(row.locator('td[data-field="state"]')).to_have_text("active")
    expect(row.locator('td[data-field="servers"]')).to_contain_text("calc")
    expect(row.locator('td[data-field="rpm"]')).to_have_text("60")
    assert secret not in ui.page.content()
    assert all(secret not in url for _, url in ui.requests)
    ui.shot("keys")
    ui.assert_clean()


def test_the_overview_charts_show_the_requests_made(ui: Ui) -> None:
    for n in range(4):
        script = 'CALL calc__evaluate {"expression": "1+1"}' if n % 2 else f"plain {n}"
        assert ui.stack.chat(script, tools=CALC_ONLY).status_code == 200
    # Everything this module's gateway routed so far, these requests included (all within the window).
    routed = ui.stack.gateway.metric("smg_router_requests_total")
    tool_calls = ui.stack.gateway.metric("smg_mcp_tool_calls_total")
    assert routed >= 4 and tool_calls >= 2
    ui.login()
    ui.go("overview")
    # The sampler closes an interval every 5 s: wait until the sums include the requests just made, over
    # the default window and the shortest one (this module's gateway started less than 5 minutes ago).
    for window in ("15", "5"):
        with ui.page.expect_response(f"{ui.stack.url}/stats/recent?minutes={window}"):
            ui.page.locator("#overview-minutes").select_option(window)
        for stat, total in (("requests", routed), ("tool_calls", tool_calls)):
            ui.page.wait_for_function(
                '([stat, n]) => Number(document.querySelector(`[data-stat="${stat}"]`)'
                ".textContent.replaceAll(',', '')) >= n",
                arg=[stat, total],
                timeout=WAIT_MS,
            )
    assert any(url.endswith("/stats/recent?minutes=5") for _, url in ui.requests)
    expect(ui.page.locator('[data-stat="tokens"]')).to_have_text(re.compile(r"^[1-9][\d,]*$"))
    for stat in ("p50_ms", "p99_ms"):
        expect(ui.page.locator(f'[data-stat="{stat}"]')).to_have_text(re.compile(r"^\d"))
    for chart in ("requests", "errors", "latency", "tokens", "tool_calls"):
        figure = ui.page.locator(f'figure[data-chart="{chart}"]')
        expect(figure.locator("svg[role=img]")).to_have_attribute("aria-label", re.compile(r"\S"))
        expect(figure.locator("figcaption")).not_to_have_text("")
    drawn = ui.page.locator('figure[data-chart="requests"] svg :is(path, polyline, rect, line)')
    expect(drawn.first).to_be_attached()
    ui.shot("overview")
    ui.assert_clean()


def test_the_nav_works_with_the_keyboard(ui: Ui) -> None:
    ui.login()
    ui.page.locator("body").focus()
    ui.page.keyboard.press("Tab")
    assert ui.page.evaluate("document.activeElement.textContent").strip() == "Skip to content"
    target = 'a[data-page="servers"]'
    for _ in range(20):
        if ui.page.evaluate(f"document.activeElement.matches('{target}')"):
            break
        ui.page.keyboard.press("Tab")
    else:
        pytest.fail("the servers link is not reachable with Tab")
    ui.page.keyboard.press("Enter")
    expect(ui.page.locator("#page-servers")).to_be_visible()
    expect(ui.page.locator("#page-overview")).to_be_hidden()
    expect(ui.page.locator(target)).to_have_attribute("aria-current", "page")
    ui.assert_clean()


def test_a_narrow_window_has_no_horizontal_scroll_on_any_page(ui: Ui) -> None:
    ui.page.set_viewport_size({"width": 390, "height": 800})
    ui.login()
    for link in ui.page.locator('nav[aria-label="Console"] a').all():  # the nav wraps, nothing cut off
        box = link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    for name in ("overview", "workers", "servers", "loops", "keys"):
        ui.go(name)
        wide = ui.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert wide[0] <= wide[1], (name, wide)
        if name in ("overview", "servers"):
            expect(ui.page.locator("#last-updated")).not_to_have_text("not yet")
            ui.shot(f"{name}-narrow")
    ui.assert_clean()


def test_signing_out_returns_to_the_login_and_forgets_the_session(ui: Ui) -> None:
    ui.login()
    ui.page.locator("#logout").click()
    expect(ui.page.locator("#login")).to_be_visible()
    expect(ui.page.locator("#console")).to_be_hidden()
    assert [c for c in ui.context.cookies() if c["name"] == "smg_console" and c["value"]] == []
    ui.page.reload()
    expect(ui.page.locator("#login")).to_be_visible()
    ui.assert_clean()


# A stdio MCP server whose tool description, schema and answer carry markup and script: the console must
# show them as text.
MARKUP = """
from mcp.server import MCPServer
server = MCPServer("markup")
said = '<img src=x onerror="window.__smgPwned=1"><b>bold</b>'
@server.tool(description=said + '<script>window.__smgPwned=2</script>')
def shout(text: str) -> str:
    '''unused: the description above wins'''
    return '<img src=y onerror="window.__smgPwned=3">' + text
server.run("stdio")
"""


def test_markup_from_an_mcp_server_is_shown_as_text_and_never_runs(ui: Ui) -> None:
    spec = {"name": "markup", "transport": "stdio", "command": sys.executable, "args": ["-c", MARKUP]}
    with ui.stack.admin() as admin:
        added = admin.post("/mcp/servers", json=spec)
        assert added.status_code == 201, added.text
    try:
        ui.login()
        ui.go("servers")
        ui.page.locator('tr[data-server="markup"] button[data-action="show-tools"]').click()
        tool = ui.page.locator('#server-tools [data-tool="shout"]')
        expect(tool).to_contain_text('<img src=x onerror="window.__smgPwned=1"><b>bold</b>')
        tool.locator('button[data-action="try-tool"]').click()
        ui.page.locator("#try-arguments").fill('{"text": "<i>hi</i>"}')
        ui.page.locator("#try-submit").click()
        answer = ui.page.locator('#try-result [data-field="text"]')
        expect(answer).to_contain_text('<img src=y onerror="window.__smgPwned=3"><i>hi</i>')
        assert (
            ui.page.locator("#server-tools img, #server-tools b, #server-tools script, #try-result i").count()
            == 0
        )
        assert ui.page.evaluate("() => window.__smgPwned") is None
        ui.assert_clean()
    finally:
        with ui.stack.admin() as admin:
            admin.delete("/mcp/servers/markup")
