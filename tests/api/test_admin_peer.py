"""The admin plane's loopback rule (no --admin-api-key) reads the TCP peer's address only, on a real
gateway process: forwarding headers a client adds neither lock a loopback client out nor let a
non-loopback client in."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import httpx
import pytest

from tests._procs import Procs

pytestmark = pytest.mark.e2e

FORWARDING = [
    {"X-Forwarded-For": "203.0.113.7"},
    {"X-Forwarded-For": "203.0.113.7, 198.51.100.1", "X-Forwarded-Proto": "https"},
    {"Forwarded": "for=203.0.113.7;proto=https"},
    {"X-Real-IP": "203.0.113.7"},
]
SPOOFED_LOOPBACK = [
    {"X-Forwarded-For": "127.0.0.1"},
    {"Forwarded": "for=127.0.0.1"},
    {"X-Real-IP": "127.0.0.1"},
]


def _non_loopback_address() -> str:
    """An IPv4 address of this host other than loopback (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
        except OSError:
            pytest.skip("this host has no IPv4 route off loopback")
        address = str(probe.getsockname()[0])
    if ipaddress.ip_address(address).is_loopback:
        pytest.skip("this host has no IPv4 address off loopback")
    return address


def test_a_loopback_admin_client_is_answered_whatever_forwarding_headers_it_sends(
    procs: Procs, tmp_path: Path
) -> None:
    _, url = procs.gateway("--mcp-registry", str(tmp_path / "mcp.db"))
    with httpx.Client(base_url=url, timeout=10) as client:
        for headers in FORWARDING:
            for path in ("/workers", "/mcp/servers"):
                resp = client.get(path, headers=headers)
                assert resp.status_code == 200, (headers, path, resp.text)


def test_a_non_loopback_client_cannot_claim_loopback_with_forwarding_headers(
    procs: Procs, tmp_path: Path
) -> None:
    address = _non_loopback_address()
    _, url = procs.gateway("--host", address, "--mcp-registry", str(tmp_path / "mcp.db"))
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/health").status_code == 200
        for headers in [{}, *SPOOFED_LOOPBACK]:
            resp = client.get("/workers", headers=headers)
            assert resp.status_code == 403, (headers, resp.text)
            assert resp.json()["error"]["code"] == "forbidden"
