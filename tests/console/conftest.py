"""The operator console in headless Chromium, against a real gateway on 127.0.0.1.

Module-scoped: one Chromium (Debian's ``chromium``, driven by Playwright without a browser download) and
one `Stack` of real processes: the gateway (``python -m smg`` with an admin key and a data key), two
scripted workers (``mock-model``, and ``fragile-model`` whose faults the tests switch on) and the
``faults`` MCP server over streamable HTTP; ``calc`` (stdio, a child of the gateway) and ``faults`` are
registered through the admin API. Every process is stopped by its PID.

Per test: a fresh browser context (1280x800 unless the test asks otherwise) wrapped in `Ui`, which
records the console messages, page errors and every request the page makes. `Ui.assert_clean` (called
by each test at its end, and again at teardown) fails on a console error or warning, a page error, or a
request that went anywhere but the gateway's own origin.

Where Chromium (env ``SMG_CHROMIUM``, else ``chromium``, ``chromium-browser`` or ``google-chrome`` on the
PATH) or Playwright is missing the tests are skipped with the reason; under CI (env ``CI`` set) that is a
failure instead, so the suite cannot pass there without running them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import pytest

from tests._helpers import CALC
from tests._procs import Gateway, Procs, poll

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, Response

ADMIN_KEY = "console-admin-key-4f9c1e"
DATA_KEY = "console-data-key-77b2d0"
WAIT_MS = 30_000  # bound of every wait on the page (polling is every 2 s; CI machines are slow)
# The message Chromium logs for a response with an error status; a test that provokes one names it.
_FAILED_RESOURCE = re.compile(r"^Failed to load resource: the server responded with a status of (\d+)")


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the browser tests)", pytrace=False)
    pytest.skip(reason)


def require_playwright() -> None:
    """Skip (fail under CI) the importing test module when Playwright is not importable."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("playwright is not importable: pip install -e '.[dev]'", allow_module_level=True)


def chromium_path() -> str:
    """The Chromium binary to drive: env SMG_CHROMIUM, else the first of the usual names on the PATH."""
    configured = os.environ.get("SMG_CHROMIUM")
    if configured:
        executable = shutil.which(configured)  # a path or a name on the PATH
        if executable is None:
            _unavailable(f"SMG_CHROMIUM={configured} is not an executable: install chromium")
        return executable
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    _unavailable("no Chromium binary (chromium, chromium-browser, google-chrome): install chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@dataclass(frozen=True)
class Stack:
    """The running gateway and what it talks to."""

    gateway: Gateway
    worker_url: str
    fragile_url: str
    faults_url: str

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60)

    def chat(
        self, text: str, *, model: str = "mock-model", headers: dict[str, str] | None = None, **extra: Any
    ) -> httpx.Response:
        """A chat request on the data plane (not from the page)."""
        body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
        sent = {"Authorization": f"Bearer {DATA_KEY}", **(headers or {})}
        return httpx.post(f"{self.url}/v1/chat/completions", json=body, headers=sent, timeout=60)

    @property
    def url(self) -> str:
        return self.gateway.url

    def worker_id(self, url: str) -> str:
        with self.admin() as admin:
            workers = admin.get("/workers").json()["workers"]
        [found] = [w["id"] for w in workers if w["url"] == url]
        return str(found)

    def breaker_of(self, url: str) -> str:
        with self.admin() as admin:
            workers = admin.get("/workers").json()["workers"]
        return str(next(w["circuit_breaker"] for w in workers if w["url"] == url))


@pytest.fixture(scope="module")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    procs = Procs()
    try:
        worker_url = procs.worker()[1]
        fragile_url = procs.worker("--model", "fragile-model")[1]
        faults_url = procs.mcp_faults()[1]
        state = tmp_path_factory.mktemp("console-state")
        gateway = procs.gateway(
            "--admin-api-key", ADMIN_KEY,
            "--api-key", DATA_KEY,
            "--worker-urls", worker_url, fragile_url,
            "--mcp-registry", str(state / "registry.db"),
            "--cb-failure-threshold", "3",
            "--cb-timeout-duration-secs", "3600",  # an opened breaker stays open for the whole module
            "--health-check-interval-secs", "3600",
            "--retry-initial-backoff-ms", "1",
            "--retry-max-backoff-ms", "5",
        )  # fmt: skip
        running = Stack(gateway, worker_url, fragile_url, faults_url)
        with running.admin() as admin:
            for server in (CALC, {"name": "faults", "transport": "streamable-http", "url": faults_url}):
                added = admin.post("/mcp/servers", json=server)
                assert added.status_code == 201, added.text
        yield running
    finally:
        procs.stop_all()


_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: env SMG_CONSOLE_SCREENSHOTS (docs/console when regenerating), else tmp_path."""
    configured = os.environ.get("SMG_CONSOLE_SCREENSHOTS")
    target = Path(configured) if configured else tmp_path / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    return target


@dataclass
class Ui:
    """One browser context on the console, with everything the page did recorded."""

    context: BrowserContext
    page: Page
    stack: Stack
    shots: Path
    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)  # of each request, in the same order
    expected_statuses: set[int] = field(default_factory=set)
    checked: bool = False

    def record(self) -> None:
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("request", self._on_request)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.console.append((message.type, message.text))

    def _on_request(self, request: Request) -> None:
        self.requests.append((request.method, request.url))
        self.headers.append(request.headers)

    def posts(self, fragment: str) -> list[str]:
        return [url for method, url in self.requests if method == "POST" and fragment in url]

    def open(self) -> Response:
        """Load the console shell; the login form or the console shows."""
        response = self.page.goto(f"{self.stack.url}/ui/")
        assert response is not None and response.status == 200
        return response

    def login(self, key: str = ADMIN_KEY) -> None:
        from playwright.sync_api import expect

        self.open()
        expect(self.page.locator("#login")).to_be_visible(timeout=WAIT_MS)
        self.page.locator("#login-key").fill(key)
        self.page.locator("#login-submit").click()
        expect(self.page.locator("#console")).to_be_visible(timeout=WAIT_MS)

    def go(self, name: str) -> None:
        """Show a page through its nav link (no reload)."""
        from playwright.sync_api import expect

        self.page.locator(f'nav[aria-label="Console"] a[data-page="{name}"]').click()
        expect(self.page.locator(f"#page-{name}")).to_be_visible(timeout=WAIT_MS)

    def mark(self) -> None:
        """Put a marker in the window that a reload or navigation would wipe (see `assert_not_reloaded`)."""
        self.page.evaluate("window.__smgConsoleMarker = 'still-here'")

    def assert_not_reloaded(self) -> None:
        assert self.page.evaluate("window.__smgConsoleMarker") == "still-here", "the page was reloaded"

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def assert_clean(self) -> None:
        """No page error, no console error or warning (but an error status the test provoked), and every
        request to the gateway's own origin."""
        self.checked = True
        unexpected = []
        for kind, text in self.console:
            status = _FAILED_RESOURCE.match(text)
            if not (kind == "error" and status and int(status.group(1)) in self.expected_statuses):
                unexpected.append((kind, text))
        assert not unexpected, f"console messages: {unexpected}"
        assert not self.errors, f"page errors: {self.errors}"
        origin = f"{self.stack.url}/"
        elsewhere = [url for _, url in self.requests if not url.startswith(origin)]
        assert not elsewhere, f"requests that left {self.stack.url}: {elsewhere}"
        assert self.stack.url.startswith("http://127.0.0.1:")


@pytest.fixture
def ui(
    browser: Browser, console_stack: Stack, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Ui]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        recorded = Ui(context, page, console_stack, screenshot_dir(tmp_path))
        recorded.record()
        yield recorded
        report = request.node.stash.get(_CALL_REPORT, None)
        if report is not None and report.passed and not recorded.checked:
            recorded.assert_clean()  # a test that forgot to check still gets checked
    finally:
        context.close()


def wait_breaker_open(stack: Stack, url: str) -> None:
    """Fail chat requests on the worker at ``url`` until the admin API reports its breaker open."""

    def opened() -> bool:
        stack.chat("breaker", model="fragile-model")
        return stack.breaker_of(url) == "open"

    poll(opened, timeout=60, interval=0.01)
