"""The operator console: a browser page served at ``/ui`` from the files of `STATIC_DIR` (shipped in
the package), its login tokens (`smg.console.session`) and the overview's sampler (`smg.console.stats`).
Everything the page shows comes from the admin API."""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = (Path(__file__).parent / "static").resolve()

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
"""The headers of every response under ``/ui``: only the page's own files run, nothing is framed, sniffed
or told where the operator came from."""
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
"""The kinds of file the console serves, by suffix; any other file is not found."""


def secured(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` (raw ASGI) of a console response with `SECURITY_HEADERS`, and ``Cache-Control:
    no-store`` unless the response chose its own caching."""
    out = [(name, value) for name, value in headers if name.lower() not in _OURS]
    if not any(name.lower() == b"cache-control" for name, _ in out):
        out.append((b"cache-control", b"no-store"))
    return [*out, *SECURITY_HEADERS]


_OURS = frozenset(name for name, _ in SECURITY_HEADERS)


def is_console_path(path: str) -> bool:
    """``/ui`` and everything under ``/ui/``."""
    return path == "/ui" or path.startswith("/ui/")
