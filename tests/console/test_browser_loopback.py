"""The operator console of a gateway without an admin key, in headless Chromium: the admin plane answers
loopback clients only, so the console opens on 127.0.0.1 without a login, sets no cookie and offers no
Sign out; everything else behaves as with a key (see test_browser.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests._procs import Procs
from tests.console.conftest import Stack, Ui, require_playwright

require_playwright()

from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A gateway with one worker and no admin key (and no MCP server)."""
    procs = Procs()
    try:
        worker_url = procs.worker()[1]
        state = tmp_path_factory.mktemp("console-loopback")
        gateway = procs.gateway("--worker-urls", worker_url, "--mcp-registry", str(state / "registry.db"))
        yield Stack(gateway, worker_url, fragile_url=worker_url, faults_url="")
    finally:
        procs.stop_all()


def test_without_an_admin_key_the_console_opens_on_loopback_without_a_login(ui: Ui) -> None:
    session = httpx.get(f"{ui.stack.url}/ui/session", timeout=30).json()
    assert session == {"authenticated": True, "key_required": False}
    ui.open()
    expect(ui.page.locator("#console")).to_be_visible()
    expect(ui.page.locator("#login")).to_be_hidden()
    expect(ui.page.locator("#logout")).to_be_hidden()
    ui.go("workers")
    row = ui.page.locator(f'#workers-table tr[data-worker-id="{ui.stack.worker_id(ui.stack.worker_url)}"]')
    expect(row.locator('td[data-field="url"]')).to_have_text(ui.stack.worker_url)
    expect(row.locator('td[data-field="breaker"]')).to_have_text("closed")
    ui.go("servers")
    expect(ui.page.locator("#servers-table tbody tr")).to_have_count(0)
    expect(ui.page.locator("#servers-empty")).to_be_visible()
    assert ui.context.cookies() == []
    assert not ui.posts("/ui/session")
    ui.assert_clean()
