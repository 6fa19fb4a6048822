"""Request heads against a real gateway process, over raw sockets on 127.0.0.1: a head over
``--max-request-head-bytes`` gets 431 and the connection is closed; a connection that has not finished
its head within ``--request-head-timeout-secs`` (from its start, or from the end of the previous response
on a kept-alive connection) is closed; a request being served is never cut by that timer; other clients
are served throughout."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests._procs import Procs

pytestmark = pytest.mark.e2e

CLOSE_BOUND_SECS = 20.0  # upper bound of any wait for the gateway to close a connection


def _gateway(procs: Procs, tmp_path: Path, *args: str) -> str:
    _, url = procs.gateway("--mcp-registry", str(tmp_path / "mcp.db"), *args)
    return url


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return socket.create_connection((parts.hostname, parts.port), timeout=CLOSE_BOUND_SECS)


def _read_until_closed(sock: socket.socket) -> tuple[bytes, str]:
    """Everything the gateway sends until it closes the connection, and how it ended ("eof" or
    "reset"). Fails if the connection is still open after `CLOSE_BOUND_SECS`."""
    out = b""
    deadline = time.monotonic() + CLOSE_BOUND_SECS
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return out, "reset"
        except TimeoutError:
            pytest.fail(f"the gateway kept the connection open; it sent {out[:200]!r}")
        if not chunk:
            return out, "eof"
        out += chunk


def _parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def _assert_431(raw: bytes) -> None:
    status, headers, body = _parse(raw)
    assert status == 431, raw[:300]
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert headers["x-smg-error-code"] == "request_header_too_large"
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "request_header_too_large"


def _health(url: str) -> int:
    return httpx.get(f"{url}/health", timeout=CLOSE_BOUND_SECS).status_code


def test_an_unfinished_head_one_byte_over_the_limit_gets_431_and_the_connection_closes(
    procs: Procs, tmp_path: Path
) -> None:
    url = _gateway(procs, tmp_path, "--max-request-head-bytes", "4096")
    start = b"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Big: "
    with _connect(url) as sock:
        sock.sendall(start + b"a" * (4097 - len(start)))  # no end of head: 4,097 bytes in all
        raw, ended = _read_until_closed(sock)
    assert ended == "eof"
    _assert_431(raw)
    assert _health(url) == 200


def test_a_complete_head_over_the_limit_gets_431_and_one_under_it_is_served(
    procs: Procs, tmp_path: Path
) -> None:
    url = _gateway(procs, tmp_path, "--max-request-head-bytes", "4096")
    with _connect(url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
        raw, ended = _read_until_closed(sock)
    assert ended == "eof"
    _assert_431(raw)
    with _connect(url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\nX-Big: " + b"a" * 3500)
        sock.sendall(b"\r\n\r\n")
        raw, _ = _read_until_closed(sock)
    assert _parse(raw)[0] == 200


def test_a_huge_header_sent_at_once_is_never_served(procs: Procs, tmp_path: Path) -> None:
    """8 MiB of one header with the default limit: answered 431, or the connection is reset while the
    client is still sending; never 200."""
    url = _gateway(procs, tmp_path)
    with _connect(url) as sock:

        def send() -> None:
            with contextlib.suppress(OSError):  # the gateway may close the connection mid-send
                sock.sendall(
                    b"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Big: " + b"a" * (8 << 20) + b"\r\n\r\n"
                )

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        raw, _ = _read_until_closed(sock)
        sender.join(CLOSE_BOUND_SECS)
        assert not sender.is_alive()
    assert not raw.startswith(b"HTTP/1.1 200")
    if raw:
        _assert_431(raw)
    assert _health(url) == 200


def test_slow_and_silent_connections_are_closed_while_other_clients_are_served(
    procs: Procs, tmp_path: Path
) -> None:
    url = _gateway(procs, tmp_path, "--request-head-timeout-secs", "1")
    slow = [_connect(url) for _ in range(10)]
    silent = [_connect(url) for _ in range(10)]
    try:
        for sock in slow:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
        assert _health(url) == 200  # a normal client is served while those sockets wait
        for sock in slow + silent:
            raw, _ = _read_until_closed(sock)
            assert raw == b""  # closed without an answer
        assert _health(url) == 200
    finally:
        for sock in slow + silent:
            sock.close()


def test_a_head_sent_a_byte_at_a_time_is_closed_by_the_deadline(procs: Procs, tmp_path: Path) -> None:
    """The deadline counts from the connection's start: bytes that keep arriving do not extend it."""
    url = _gateway(procs, tmp_path, "--request-head-timeout-secs", "1")
    with _connect(url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
        deadline = time.monotonic() + CLOSE_BOUND_SECS
        closed = False
        while not closed and time.monotonic() < deadline:
            try:
                sock.sendall(b"a")
                sock.settimeout(0.1)  # paces the trickle: one byte per 0.1 s unless the gateway closes
                closed = sock.recv(1) == b""
            except TimeoutError:
                continue
            except OSError:
                closed = True
        assert closed, "the gateway kept a trickling head open"
        assert _health(url) == 200


def test_on_a_kept_alive_connection_the_next_head_has_the_same_deadline(procs: Procs, tmp_path: Path) -> None:
    url = _gateway(procs, tmp_path, "--request-head-timeout-secs", "1")
    with _connect(url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first or not first.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, "the first response was cut"
            first += chunk
        assert _parse(first)[0] == 200
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
        raw, _ = _read_until_closed(sock)
    assert raw == b""


def test_a_body_trickling_in_after_its_answer_is_held_to_the_next_heads_deadline(
    procs: Procs, tmp_path: Path
) -> None:
    """A keyless request is answered 401 before its body is read; a client that keeps sending that
    body is closed like a slow head."""
    url = _gateway(procs, tmp_path, "--api-key", "k", "--request-head-timeout-secs", "1")
    with _connect(url) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n{"
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            assert chunk, "no answer before the body"
            answer += chunk
        assert _parse(answer)[0] == 401
        deadline = time.monotonic() + CLOSE_BOUND_SECS
        closed = False
        while not closed and time.monotonic() < deadline:
            try:
                sock.sendall(b" ")
                sock.settimeout(0.1)  # paces the trickle
                closed = sock.recv(65536) == b""
            except TimeoutError:
                continue
            except OSError:
                closed = True
        assert closed, "the gateway kept reading a body nobody wanted"


def test_pipelined_requests_are_each_answered(procs: Procs, tmp_path: Path) -> None:
    url = _gateway(procs, tmp_path, "--max-request-head-bytes", "4096")
    with _connect(url) as sock:
        sock.sendall(
            b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n" * 2
            + b"GET /health HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n"
        )
        raw, ended = _read_until_closed(sock)
    assert ended == "eof"
    assert raw.count(b"HTTP/1.1 200 OK") == 3


def test_an_oversized_head_pipelined_behind_a_stream_ends_that_connection_only(
    procs: Procs, tmp_path: Path
) -> None:
    """No answer can be written in the middle of a stream: the connection is closed, the gateway
    keeps serving others."""
    _, worker = procs.worker("--chunk-delay-ms", "100")
    url = _gateway(procs, tmp_path, "--worker-urls", worker, "--max-request-head-bytes", "4096")
    body = json.dumps(
        {"model": "mock-model", "stream": True, "messages": [{"role": "user", "content": "a b c d e f g h"}]}
    ).encode()
    with _connect(url) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Big: " + b"a" * 5000)
        raw, _ = _read_until_closed(sock)
    assert b"HTTP/1.1 431" not in raw
    assert _health(url) == 200


def test_the_head_deadline_never_cuts_a_request_being_served(procs: Procs, tmp_path: Path) -> None:
    """A worker that answers after 1.5 s and streams a chunk every 0.1 s, a head deadline of 0.5 s:
    both answers arrive whole on one kept-alive connection, which then serves a third request."""
    _, worker = procs.worker("--delay-ms", "1500", "--chunk-delay-ms", "100")
    url = _gateway(procs, tmp_path, "--worker-urls", worker, "--request-head-timeout-secs", "0.5")
    words = " ".join(f"w{i}" for i in range(20))
    body = {"model": "mock-model", "messages": [{"role": "user", "content": words}]}
    with httpx.Client(base_url=url, timeout=CLOSE_BOUND_SECS) as client:
        done = client.post("/v1/chat/completions", json=body)
        assert done.status_code == 200, done.text
        assert done.json()["choices"][0]["message"]["content"] == f"echo: {words}"
        with client.stream("POST", "/v1/chat/completions", json=body | {"stream": True}) as resp:
            assert resp.status_code == 200
            text = resp.read()
        assert text.rstrip().endswith(b"data: [DONE]")
        assert client.get("/health").status_code == 200


def test_never_ending_headers_on_many_sockets_do_not_stop_health(procs: Procs, tmp_path: Path) -> None:
    """Ten clients sending an endless header: each is closed by the gateway; /health answers meanwhile."""
    url = _gateway(procs, tmp_path)
    ended: list[str] = []

    def flood() -> None:
        with _connect(url) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Flood: ")
            deadline = time.monotonic() + CLOSE_BOUND_SECS
            try:
                while time.monotonic() < deadline:
                    sock.sendall(b"a" * 16384)
            except OSError:
                ended.append("closed")

    floods = [threading.Thread(target=flood, daemon=True) for _ in range(10)]
    for thread in floods:
        thread.start()
    for _ in range(5):
        assert _health(url) == 200
    for thread in floods:
        thread.join(CLOSE_BOUND_SECS + 5)
    assert ended == ["closed"] * 10
    assert _health(url) == 200
