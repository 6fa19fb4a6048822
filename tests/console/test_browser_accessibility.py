"""Accessibility of the operator console, audited with axe-core (a checker nobody here wrote) in headless
Chromium: the login, every page, the tools panel with the try form, and the confirmation dialog, at
1280x800 and at 390x800, have no axe violation (labels, names of controls, contrast, landmarks, ARIA
use, table headers...). Keyboard use and the narrow layout are driven in test_browser.py.

axe-core 4.14.1 comes from npm: `.ci/run` unpacks it into ``~/.cache/smg-tests/axe-core-4.14.1``
(``npm pack axe-core@4.14.1``); env ``SMG_AXE_CORE`` names another ``axe.min.js``. Without it the test
is skipped with the reason, as the MCP Inspector's test is. axe is injected into the page, so this
context alone runs with the page's CSP bypassed (the other browser tests keep it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.console.conftest import WAIT_MS, Stack, Ui, require_playwright, screenshot_dir

require_playwright()

from playwright.sync_api import Browser, expect  # noqa: E402

pytestmark = pytest.mark.e2e

AXE_VERSION = "4.14.1"
_DEFAULT = Path.home() / ".cache" / "smg-tests" / f"axe-core-{AXE_VERSION}" / "package" / "axe.min.js"
_AUDIT = """async () => {
  const found = await axe.run(document, {resultTypes: ["violations"]});
  return found.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" "))}));
}"""


def _axe_source() -> str:
    path = Path(os.environ.get("SMG_AXE_CORE") or _DEFAULT)
    if not path.is_file():
        pytest.skip(
            f"axe-core not found at {path}: `npm pack axe-core@{AXE_VERSION}` there (as .ci/run does)"
        )
    return path.read_text()


def _violations(ui: Ui, axe: str) -> list[dict[str, Any]]:
    if not ui.page.evaluate("() => typeof axe !== 'undefined'"):
        ui.page.evaluate(axe)
    found: list[dict[str, Any]] = ui.page.evaluate(_AUDIT)
    return found


@pytest.mark.parametrize("width", [1280, 390])
def test_every_view_of_the_console_has_no_axe_violation(
    browser: Browser, console_stack: Stack, tmp_path: Path, width: int
) -> None:
    axe = _axe_source()
    context = browser.new_context(viewport={"width": width, "height": 800}, bypass_csp=True)
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        ui = Ui(context, page, console_stack, screenshot_dir(tmp_path))
        ui.record()
        seen: dict[str, list[dict[str, Any]]] = {}
        ui.open()
        expect(page.locator("#login")).to_be_visible()
        seen["login"] = _violations(ui, axe)
        ui.login()
        for name in ("overview", "workers", "servers", "loops", "keys"):
            ui.go(name)
            expect(page.locator("#last-updated")).not_to_have_text("not yet")
            if name == "servers":
                page.locator('tr[data-server="calc"] button[data-action="show-tools"]').click()
                page.locator('[data-tool="evaluate"] button[data-action="try-tool"]').click()
                page.locator("#try-arguments").fill("{}")
                page.locator("#try-submit").click()
                expect(page.locator("#try-errors li").first).to_be_visible()
            seen[name] = _violations(ui, axe)
        ui.go("workers")
        page.locator('button[data-action="remove-worker"]').first.click()
        expect(page.locator("#confirm-dialog")).to_be_visible()
        seen["confirmation dialog"] = _violations(ui, axe)
        page.locator("#confirm-no").click()
        assert {view: found for view, found in seen.items() if found} == {}
        ui.assert_clean()
    finally:
        context.close()
