"""Clients that read a stream slowly or not at all, against a real gateway and a real scripted worker:
the gateway reads from the worker only as fast as the client takes the answer, holds a bounded part of it
meanwhile, keeps serving others, delivers the whole answer once the client reads again, and gives back
the memory a burst of such streams took."""

from __future__ import annotations

import json
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httptools
import httpx
import orjson
import pytest

from smg.serving.allocator import TRIM_SLACK
from tests._procs import CHAT, Gateway, Procs, SideTraffic, chat, poll, stream_outcome

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

MIB = 1024 * 1024
# An answer of about 25 MB (a request of 450 KB: the worker takes up to 1 MiB): far more than the
# sockets' buffers between worker and client hold (a few MiB each on Linux), so the worker can only send
# all of it if someone reads it.
WORDS = 150_000
HELD_BOUND = 2 * MIB  # what the gateway itself may hold of one stalled stream


def _wire_request(gw: Gateway, body: dict[str, Any]) -> bytes:
    data = orjson.dumps(body)
    head = (
        f"POST {CHAT} HTTP/1.1\r\nHost: {gw.url.split('//')[1]}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + data


class _Client:
    """A raw client socket (a small receive buffer, as a slow client's would be) that reads only when told."""

    def __init__(self, gw: Gateway, body: dict[str, Any]) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        self.sock.settimeout(60)
        self.sock.connect(_address(gw))
        self.port = self.sock.getsockname()[1]
        self.sock.sendall(_wire_request(gw, body))
        self.wire = b""

    def read_first_event(self) -> None:
        while b"\r\n\r\n" not in self.wire or b"data: " not in self.wire.partition(b"\r\n\r\n")[2]:
            data = self.sock.recv(4096)
            assert data, self.wire
            self.wire += data

    def read_to_end(self) -> tuple[int, bytes]:
        """The rest of the answer, until the gateway closes (``Connection: close``): (status, body)."""
        parts = [self.wire]
        while data := self.sock.recv(1 << 20):
            parts.append(data)
        self.sock.close()
        return _parse(b"".join(parts))


def _parse(wire: bytes) -> tuple[int, bytes]:
    body: list[bytes] = []

    class Callbacks:
        def on_body(self, data: bytes) -> None:
            body.append(data)

    parser = httptools.HttpResponseParser(Callbacks())
    parser.feed_data(wire)
    return parser.get_status_code(), b"".join(body)


def _worker_stats(worker: str) -> dict[str, int]:
    stats: dict[str, int] = httpx.get(worker + "/_smg/stats", timeout=10).json()
    return stats


def _queued(*ports: int) -> int:
    """Bytes waiting in the kernel on established loopback connections to or from ``ports``: unsent or
    unacknowledged by the sender (tx_queue), or unread by the receiver (rx_queue)."""
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16), fields[3]
        tx, rx = (int(n, 16) for n in fields[4].split(":"))
        if state != "01":  # ESTABLISHED
            continue
        if local in ports:
            total += tx
        if remote in ports:
            total += rx
    return total


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _address(gw: Gateway) -> tuple[str, int]:
    host, port = gw.url.split("//")[1].rsplit(":", 1)
    return host, int(port)


def _mcp_config(tmp_path: Path) -> Path:
    path = tmp_path / "mcp.json"
    server = {"name": "local", "protocol": "stdio", "command": sys.executable,
              "args": ["-m", "mcp_servers.faults", "--transport", "stdio"]}  # fmt: skip
    path.write_text(json.dumps({"servers": [server]}))
    return path


def _held_by_gateway(worker: str, gw: Gateway, client: _Client) -> int:
    """Bytes of the stream the worker has sent that are neither with the client nor in a socket: what the
    gateway holds (give or take the chunk framing), read once nothing moves any more."""

    def settled() -> int | None:
        ports = (_port(worker), _port(gw.url))
        first = (_worker_stats(worker)["stream_bytes_sent"], _queued(*ports))
        second = (_worker_stats(worker)["stream_bytes_sent"], _queued(*ports))
        return first[0] - first[1] - len(client.wire) if first == second else None

    def check() -> tuple[int] | None:
        held = settled()
        return None if held is None else (held,)

    held: int = poll(check, timeout=30)[0]
    return held


def _connected(gw: Gateway) -> bool:
    servers = httpx.get(gw.url + "/mcp/servers", timeout=10).json()["servers"]
    return bool(servers) and all(server["status"]["state"] == "connected" for server in servers)


@pytest.mark.parametrize("path", ["pass-through", "tool loop"])
def test_a_client_that_stops_reading_stops_the_worker_read_and_later_gets_the_whole_stream(
    procs: Procs, tmp_path: Path, request: pytest.FixtureRequest, path: str
) -> None:
    _, worker = procs.worker()
    text = " ".join(f"w{i % 10}" for i in range(WORDS))
    if path == "tool loop":
        gw = procs.gateway(
            "--worker-urls", worker, "--mcp-config-path", str(_mcp_config(tmp_path)),
            "--mcp-registry", str(tmp_path / "registry.db"),
        )  # fmt: skip
        poll(lambda: _connected(gw), timeout=60)
        tools = [{"type": "mcp", "server_label": "local", "require_approval": "never"}]
        body = chat(text, stream=True, tools=tools)
    else:
        gw = procs.gateway("--worker-urls", worker)
        body = chat(text, stream=True)

    client = _Client(gw, body)
    request.addfinalizer(client.sock.close)
    client.read_first_event()
    # The client reads nothing more. The worker's writes block once the sockets' buffers on the way are
    # full: the gateway has stopped reading from it.
    stalled = poll(lambda: (s := _worker_stats(worker))["stream_writes_blocked"] == 1 and s, timeout=60)
    if path == "pass-through":
        held = _held_by_gateway(worker, gw, client)
        assert held <= HELD_BOUND, f"the gateway holds {held} bytes of a stalled stream"

    # Others are served meanwhile, and the stalled stream stays stalled.
    with SideTraffic(gw.url) as side:
        assert httpx.get(gw.url + "/health", timeout=10).status_code == 200
    side.assert_none_lost()
    assert _worker_stats(worker)["stream_writes_blocked"] == 1

    status, answer = client.read_to_end()
    assert status == 200
    content, error = stream_outcome(answer)
    assert error is None
    assert content == f"echo: {text}"
    done = _worker_stats(worker)
    assert done["stream_writes_blocked"] == 0
    # The worker could send only part of the answer while the client did not read.
    assert stalled["stream_bytes_sent"] < done["stream_bytes_sent"]
    poll(lambda: gw.metric("smg_http_connections_active") == 0, timeout=30)


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _read_all(gw: Gateway, body: dict[str, Any]) -> bytes:
    """The raw answer to ``body``, read as fast as the socket gives it."""
    with socket.create_connection(_address(gw), timeout=120) as sock:
        sock.sendall(_wire_request(gw, body))
        parts = []
        while data := sock.recv(1 << 20):
            parts.append(data)
    return b"".join(parts)


def _settled_rss(pid: int, baseline: int, bound: int) -> None:
    """Wait (bounded) until the RSS is within ``bound`` KiB of ``baseline``; fails with the figures."""
    try:
        poll(lambda: _kib(pid, "VmRSS") - baseline <= bound, timeout=60, interval=0.5)
    except TimeoutError:
        rss, peak = _kib(pid, "VmRSS"), _kib(pid, "VmHWM")
        pytest.fail(f"RSS {rss >> 10} MiB still, from {baseline >> 10} MiB before, peak {peak >> 10} MiB")


# What the gateway may keep once idle: a trim runs after the RSS grew by TRIM_SLACK.
SETTLED = (TRIM_SLACK + 4 * MIB) // 1024  # KiB


def test_the_memory_a_burst_of_long_streams_took_is_given_back(procs: Procs) -> None:
    _, worker = procs.worker()
    gw = procs.gateway("--worker-urls", worker)
    # Long prompts (900 KB) and answers of 3.4 MB (the reply is cut at max_tokens words).
    body = chat(" ".join(f"w{i % 10}" for i in range(300_000)), stream=True, max_tokens=20_000)

    def stream(_: int) -> bool:
        wire = _read_all(gw, body)
        return wire.startswith(b"HTTP/1.1 200 ") and wire.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")

    with ThreadPoolExecutor(50) as pool:
        assert all(pool.map(stream, range(10)))  # warm-up
        pid = gw.proc.pid
        baseline = _kib(pid, "VmRSS")
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # restarts the peak RSS (VmHWM) from here
        assert all(pool.map(stream, range(50)))
    assert _kib(pid, "VmHWM") - baseline >= 2 * SETTLED, "the burst should have taken memory"
    poll(lambda: gw.metric("smg_http_connections_active") == 0, timeout=30)
    _settled_rss(pid, baseline, SETTLED)


def test_stalled_streams_hold_a_bounded_part_of_their_answers_and_none_of_their_requests(
    procs: Procs, request: pytest.FixtureRequest
) -> None:
    _, worker = procs.worker()
    gw = procs.gateway("--worker-urls", worker)
    assert stream_outcome(_parse(_read_all(gw, chat("warm up", stream=True)))[1]) == ("echo: warm up", None)
    pid = gw.proc.pid
    baseline = _kib(pid, "VmRSS")
    # Prompts of 300 KB, answers of 16 MB.
    text = " ".join(f"w{i % 10}" for i in range(100_000))
    clients = [_Client(gw, chat(text, stream=True)) for _ in range(20)]
    for client in clients:
        request.addfinalizer(client.sock.close)
        client.read_first_event()
    poll(lambda: _worker_stats(worker)["stream_writes_blocked"] == len(clients), timeout=60)
    held = _kib(pid, "VmRSS") - baseline
    assert held <= len(clients) * 1024, f"{len(clients)} stalled streams hold {held >> 10} MiB"
    for client in clients:  # each leaves with most of its answer still on the way
        client.sock.close()
    poll(lambda: gw.metric("smg_http_connections_active") == 0, timeout=30)
    _settled_rss(pid, baseline, SETTLED)
