"""The logging set-up every smg entry point shares: plain or one JSON object per line, on stderr, with no
URL secret in any line."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import orjson

from smg.mcp.registry.hosts import RedactUrlsFilter

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "warning": logging.WARNING}
LEVELS |= {"error": logging.ERROR, "off": logging.CRITICAL + 1}


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc).decode()


def configure_logging(level: str, *, json: bool = False, stream: TextIO | None = None) -> None:
    """Route every logger to one handler on ``stream`` (default stderr) at ``level`` (debug, info, warn,
    warning, error, or off: nothing is written), replacing the root logger's handlers.

    Every URL in a message has its password and query values replaced (`RedactUrlsFilter`): library
    loggers print the URLs they use. The MCP client's HTTP library (``httpx2``) logs warnings only, not
    one INFO line per JSON-RPC message. Raises KeyError for an unknown level."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(
        _JsonFormatter() if json else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RedactUrlsFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level.lower()])
    logging.getLogger("httpx2").setLevel(logging.WARNING)
