"""The operator console's HTTP side on a real gateway (127.0.0.1, a scripted worker behind it): the files
under /ui with the console's security headers on every answer, path traversal refused, the login and its
cookie, the admin plane taking the cookie only with ``X-SMG-Console: 1`` (never the data plane), and
``GET /stats/recent`` counting what was routed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

import smg.api.console
from smg.app import create_app
from smg.console import CONTENT_SECURITY_POLICY, STATIC_DIR
from smg.console.session import ConsoleSessions
from smg.settings import AuthSettings
from smg.testing.gateway import RunningGateway
from smg.testing.worker import RunningWorker
from tests.conftest import chat_body, make_settings

ADMIN_KEY, SECOND_ADMIN_KEY, DATA_KEY = "console-admin-one", "console-admin-two", "console-data-key"
CONSOLE = {"X-SMG-Console": "1"}
HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@pytest.fixture
def start(worker: RunningWorker, start_gateway: Callable[..., Any]) -> Callable[..., Any]:
    """``await start(admin_keys=...)``: a gateway with a data key and those admin keys."""

    async def run(
        admin_keys: tuple[str, ...] = (ADMIN_KEY, SECOND_ADMIN_KEY), **kwargs: Any
    ) -> RunningGateway:
        auth = AuthSettings(api_keys=(DATA_KEY,), admin_api_keys=admin_keys)
        gateway: RunningGateway = await start_gateway(make_settings((worker.url,), auth=auth), **kwargs)
        return gateway

    return run


@pytest.fixture
async def gw(start: Callable[..., Any]) -> RunningGateway:
    gateway: RunningGateway = await start()
    return gateway


@pytest.fixture
async def http(gw: RunningGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        yield client


async def _login(http: httpx.AsyncClient, key: str = ADMIN_KEY) -> str:
    resp = await http.post("/ui/session", json={"key": key})
    assert resp.status_code == 204, resp.text
    return str(resp.cookies["smg_console"])


def _assert_console_headers(resp: httpx.Response) -> None:
    for name, value in HEADERS.items():
        assert resp.headers.get(name) == value, (resp.request.url, name, resp.headers.get(name))
    assert resp.headers.get("cache-control") in ("no-store", "no-cache")


async def _raw_get(url: str, target: str) -> tuple[int, bytes]:
    """GET ``target`` sent byte for byte (an HTTP client would normalize ``..`` away)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        async with asyncio.timeout(10):
            raw = await reader.read()
    finally:
        writer.close()
    head, _, _ = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head.lower()


# --- files -----------------------------------------------------------------------------------------


async def test_ui_redirects_to_the_page_and_serves_index_html_with_the_security_headers(
    http: httpx.AsyncClient,
) -> None:
    root = await http.get("/ui")
    assert root.status_code == 307 and root.headers["location"] == "/ui/"
    _assert_console_headers(root)

    page = await http.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-store"
    assert page.content == (STATIC_DIR / "index.html").read_bytes()
    _assert_console_headers(page)


async def test_every_file_of_the_console_is_served_with_its_content_type(http: httpx.AsyncClient) -> None:
    expected = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}
    expected |= {".svg": "image/svg+xml", ".png": "image/png"}
    files = [p for p in STATIC_DIR.rglob("*") if p.is_file() and p.suffix in expected]
    assert any(p.suffix == ".js" for p in files)
    for path in files:
        relative = path.relative_to(STATIC_DIR).as_posix()
        resp = await http.get(f"/ui/{relative}")
        assert resp.status_code == 200, relative
        assert resp.headers["content-type"] == expected[path.suffix], relative
        assert resp.content == path.read_bytes()
        assert resp.headers["cache-control"] == ("no-store" if path.suffix == ".html" else "no-cache")
        _assert_console_headers(resp)


@pytest.mark.parametrize(
    "target",
    [
        "/ui/../pyproject.toml",
        "/ui/%2e%2e/%2e%2e/pyproject.toml",
        "/ui/js/../../__init__.py",
        "/ui/..%2f__init__.py",
        "/ui/%2e%2e%2fsession.py",
        "/ui//etc/passwd",
        "/ui/./index.html",
        "/ui/js/",
        "/ui/js",
        "/ui/missing.js",
        "/ui/.hidden.js",
        "/ui/..%5c__init__.py",
    ],
)
async def test_paths_outside_the_console_files_or_not_files_are_not_found(
    gw: RunningGateway, target: str
) -> None:
    status, head = await _raw_get(gw.url, target)
    assert status == 404, (target, head)
    assert b"content-security-policy: default-src 'none'" in head


async def test_only_the_console_kinds_of_file_inside_its_directory_are_served(
    http: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    static, outside = tmp_path / "static", tmp_path / "secret.js"
    (static / "js").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>t</title>")
    (static / "app.js").write_text("export {};")
    (static / "notes.txt").write_text("not a console file")
    (static / "config.json").write_text("{}")
    outside.write_text("export const secret = 1;")
    (static / "js" / "linked.js").symlink_to(outside)
    monkeypatch.setattr(smg.api.console, "STATIC_DIR", static.resolve())

    assert (await http.get("/ui/app.js")).status_code == 200
    for path in ("/ui/notes.txt", "/ui/config.json", "/ui/js/linked.js", "/ui/__init__.py"):
        resp = await http.get(path)
        assert resp.status_code == 404, path
        assert resp.json()["error"]["code"] == "unknown_url"
        _assert_console_headers(resp)


# --- the session -----------------------------------------------------------------------------------


async def test_session_reports_the_key_requirement_and_the_login(http: httpx.AsyncClient) -> None:
    before = await http.get("/ui/session")
    assert before.json() == {"authenticated": False, "key_required": True}
    assert before.headers["cache-control"] == "no-store"
    _assert_console_headers(before)

    resp = await http.post("/ui/session", json={"key": ADMIN_KEY})
    assert resp.status_code == 204
    cookie = resp.headers["set-cookie"]
    token = resp.cookies["smg_console"]
    assert cookie == f"smg_console={token}; HttpOnly; SameSite=Strict; Path=/"  # a browser-session cookie
    assert ADMIN_KEY not in cookie and token.startswith("v1.")
    _assert_console_headers(resp)
    assert (await http.get("/ui/session")).json() == {"authenticated": True, "key_required": True}

    out = await http.delete("/ui/session")
    assert out.status_code == 204
    assert out.headers["set-cookie"].startswith("smg_console=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/")
    assert (await http.get("/ui/session")).json()["authenticated"] is False


async def test_any_of_several_admin_keys_logs_in(http: httpx.AsyncClient) -> None:
    for key in (ADMIN_KEY, SECOND_ADMIN_KEY):
        http.cookies.clear()
        await _login(http, key)
        workers = await http.get("/workers", headers=CONSOLE)
        assert workers.status_code == 200, key


async def test_a_wrong_key_is_401_a_data_key_403_and_the_key_is_never_logged_or_echoed(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = await http.post("/ui/session", json={"key": "not-an-admin-key-secret"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert "set-cookie" not in wrong.headers
    _assert_console_headers(wrong)
    data = await http.post("/ui/session", json={"key": DATA_KEY})
    assert data.status_code == 403
    assert data.json()["error"]["code"] == "forbidden"
    assert "set-cookie" not in data.headers
    odd = await http.post("/ui/session", json={"key": ["not-an-admin-key-secret"]})
    assert odd.status_code == 400
    for resp in (wrong, data, odd):
        assert "not-an-admin-key-secret" not in resp.text and DATA_KEY not in resp.text
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.__dict__}" for r in caplog.records)
    assert "not-an-admin-key-secret" not in logged and DATA_KEY not in logged


@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b'{"key": ""}', b'{"key": "a", "extra": 1}', b'{"key": "a", "key": "b"}', b"[]", b"nope"],
)
async def test_a_malformed_login_is_400_and_sets_nothing(http: httpx.AsyncClient, body: bytes) -> None:
    resp = await http.post("/ui/session", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert "set-cookie" not in resp.headers
    _assert_console_headers(resp)


# --- the admin plane with the cookie ------------------------------------------------------------------


async def test_the_admin_plane_takes_the_cookie_only_with_the_console_header(
    http: httpx.AsyncClient, worker: RunningWorker
) -> None:
    token = await _login(http)
    assert (await http.get("/workers", headers=CONSOLE)).status_code == 200
    assert (await http.get("/stats/recent", headers=CONSOLE)).status_code == 200
    no_header = await http.get("/workers")
    assert no_header.status_code == 401 and no_header.json()["error"]["code"] == "invalid_api_key"
    http.cookies.clear()
    no_cookie = await http.get("/workers", headers=CONSOLE)
    assert no_cookie.status_code == 401
    wrong_value = await http.get(
        "/workers", headers={"X-SMG-Console": "yes", "Cookie": f"smg_console={token}"}
    )
    assert wrong_value.status_code == 401
    # a change through the cookie: what a cross-site form cannot do without the header
    remove = f"/workers/{worker.url}"
    assert (await http.delete(remove, headers={"Cookie": f"smg_console={token}"})).status_code == 401
    assert (
        await http.delete(remove, headers={**CONSOLE, "Cookie": f"smg_console={token}"})
    ).status_code == 200


async def test_the_data_plane_ignores_the_console_cookie(http: httpx.AsyncClient) -> None:
    await _login(http)
    resp = await http.post("/v1/chat/completions", json=chat_body(), headers=CONSOLE)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "invalid_api_key"
    models = await http.get("/v1/models", headers=CONSOLE)
    assert models.status_code == 401


@pytest.mark.parametrize("kind", ["expired", "other-admin-key", "tampered", "garbage", "the-key-itself"])
async def test_a_bad_token_is_refused_on_the_admin_plane_and_in_the_session(
    http: httpx.AsyncClient, kind: str
) -> None:
    if kind == "expired":
        token = ConsoleSessions([ADMIN_KEY.encode()], clock=lambda: time.time() - 13 * 3600).issue(
            ADMIN_KEY.encode()
        )
    elif kind == "other-admin-key":
        token = ConsoleSessions([b"someone-elses-admin-key"]).issue(b"someone-elses-admin-key")
    elif kind == "tampered":
        good = await _login(http)
        version, expiry, nonce, mac = good.split(".")
        token = f"{version}.{int(expiry) + 3600}.{nonce}.{mac}"  # a later expiry under the old mac
    elif kind == "garbage":
        token = "v1.abc.def.ghi"
    else:
        token = ADMIN_KEY
    assert token is not None
    http.cookies.clear()
    cookie = {"Cookie": f"smg_console={token}"}
    resp = await http.get("/workers", headers={**CONSOLE, **cookie})
    assert resp.status_code == 401
    assert (await http.get("/ui/session", headers=cookie)).json()["authenticated"] is False


async def test_an_admin_key_header_still_works_and_wins_over_the_cookie(http: httpx.AsyncClient) -> None:
    await _login(http)
    data_key = await http.get("/workers", headers={**CONSOLE, "Authorization": f"Bearer {DATA_KEY}"})
    assert data_key.status_code == 403  # a key presented is judged as a key, whatever the cookie says
    admin = await http.get("/workers", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert admin.status_code == 200


async def test_without_an_admin_key_the_console_is_loopback_only_and_needs_no_login(
    start: Callable[..., Any],
) -> None:
    gateway: RunningGateway = await start(admin_keys=())
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as local:
        assert (await local.get("/ui/session")).json() == {"authenticated": True, "key_required": False}
        login = await local.post("/ui/session", json={"key": "anything"})
        assert login.status_code == 204 and "set-cookie" not in login.headers
        assert (await local.get("/ui/")).status_code == 200
        assert (await local.get("/stats/recent")).status_code == 200
    app = create_app(gateway.context.settings, context=gateway.context)
    app.state.context = gateway.context  # what the lifespan attaches; this transport runs no lifespan
    remote = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=remote, base_url="http://gateway") as far:
        for path in ("/ui/", "/ui/session", "/ui", "/stats/recent"):
            resp = await far.get(path)
            assert resp.status_code == 403, path
            assert resp.json()["error"]["code"] == "forbidden"
            if path.startswith("/ui"):
                _assert_console_headers(resp)


async def test_with_an_admin_key_the_shell_loads_from_anywhere_but_the_data_does_not(
    gw: RunningGateway,
) -> None:
    app = create_app(gw.context.settings, context=gw.context)
    app.state.context = gw.context
    remote = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=remote, base_url="http://gateway") as far:
        assert (await far.get("/ui/")).status_code == 200
        assert (await far.get("/ui/session")).json() == {"authenticated": False, "key_required": True}
        assert (await far.get("/stats/recent")).status_code == 401


async def test_an_edge_refusal_under_ui_carries_the_console_headers(http: httpx.AsyncClient) -> None:
    resp = await http.post("/ui/session", content=b"x" * 10, headers={"x-request-id": "café".encode()})
    assert resp.status_code == 400
    _assert_console_headers(resp)


async def test_other_responses_do_not_get_the_console_headers(http: httpx.AsyncClient) -> None:
    resp = await http.get("/health")
    assert "content-security-policy" not in resp.headers
    chat = await http.post(
        "/v1/chat/completions", json=chat_body(), headers={"Authorization": f"Bearer {DATA_KEY}"}
    )
    assert chat.status_code == 200 and "content-security-policy" not in chat.headers


# --- GET /stats/recent -----------------------------------------------------------------------------

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
DATA = {"Authorization": f"Bearer {DATA_KEY}"}


async def _points(http: httpx.AsyncClient, minutes: int = 60) -> list[dict[str, Any]]:
    resp = await http.get("/stats/recent", params={"minutes": minutes}, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    points: list[dict[str, Any]] = resp.json()["points"]
    return points


async def test_the_sampler_counts_every_routed_request_error_and_token(
    start: Callable[..., Any], worker: RunningWorker
) -> None:
    gateway: RunningGateway = await start(stats_interval=0.2)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        for n in range(5):
            ok = await http.post("/v1/chat/completions", json=chat_body(f"hello {n}"), headers=DATA)
            assert ok.status_code == 200
        worker.faults.status = 400  # the worker refuses: passed through, and counted as an error
        refused = await http.post("/v1/chat/completions", json=chat_body("refused"), headers=DATA)
        assert refused.status_code == 400
        worker.faults.status = None
        for _ in range(3):  # admin calls and probes are not routed requests
            assert (await http.get("/workers", headers=ADMIN)).status_code == 200
            assert (await http.get("/health")).status_code == 200

        async with asyncio.timeout(20):  # the sampler runs every 0.2 s; machines are noisy
            while True:
                points = await _points(http)
                if sum(p["requests"] for p in points) >= 6:
                    break
                await asyncio.sleep(0.05)
        answer = (await http.get("/stats/recent", headers=ADMIN)).json()

    assert answer["interval_secs"] == 0.2
    assert sum(p["requests"] for p in points) == 6
    assert sum(p["errors"] for p in points) == 1
    assert sum(p["prompt_tokens"] for p in points) > 0 and sum(p["completion_tokens"] for p in points) > 0
    assert sum(p["tool_calls"] for p in points) == 0
    busy = [p for p in points if p["requests"]]
    assert all(p["p50_ms"] is not None and 0 < p["p50_ms"] <= p["p99_ms"] for p in busy)
    assert all(p["p50_ms"] is None and p["p99_ms"] is None for p in points if not p["requests"])
    times = [p["t"] for p in points]
    assert times == sorted(times) and abs(times[-1] - time.time()) < 600
    assert set(points[0]) == {
        "t", "requests", "errors", "p50_ms", "p99_ms", "prompt_tokens", "completion_tokens", "tool_calls",
        "tool_errors",
    }  # fmt: skip


async def test_a_sample_taken_now_holds_the_requests_since_the_last(
    gw: RunningGateway, http: httpx.AsyncClient
) -> None:
    stats = gw.context.recent_stats
    assert stats is not None and stats.interval_secs == 5
    for _ in range(3):
        assert (await http.post("/v1/chat/completions", json=chat_body(), headers=DATA)).status_code == 200
    point = stats.sample()
    assert point is not None
    points = await _points(http)
    assert points[-1] == point
    assert sum(p["requests"] for p in points) == 3  # the 5 s sampler may have taken some of them first
    assert point["p50_ms"] is not None or point["requests"] == 0
    answer = (await http.get("/stats/recent", headers=ADMIN)).json()
    assert answer["interval_secs"] == 5


@pytest.mark.parametrize("minutes", ["0", "61", "-1", "x", "1.5"])
async def test_minutes_out_of_range_are_400(http: httpx.AsyncClient, minutes: str) -> None:
    resp = await http.get("/stats/recent", params={"minutes": minutes}, headers=ADMIN)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid_request"


async def test_stats_are_on_the_admin_plane(http: httpx.AsyncClient) -> None:
    assert (await http.get("/stats/recent")).status_code == 401
    assert (await http.get("/stats/recent", headers=DATA)).status_code == 403


async def test_over_https_the_cookie_is_secure(gw: RunningGateway) -> None:
    app = create_app(gw.context.settings, context=gw.context)
    app.state.context = gw.context
    tls = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=tls, base_url="https://gateway") as client:
        login = await client.post("/ui/session", json={"key": ADMIN_KEY})
        assert login.status_code == 204
        assert login.headers["set-cookie"].endswith("; HttpOnly; SameSite=Strict; Path=/; Secure")
        out = await client.delete("/ui/session")
        assert out.headers["set-cookie"].endswith("; Secure")
