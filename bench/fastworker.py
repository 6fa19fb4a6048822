"""A fast, fixed-answer OpenAI worker for gateway benchmarks: raw asyncio HTTP/1.1 (uvloop when present).

It must never be the bottleneck, so it parses as little as it can: keep-alive connections, a
`Content-Length` (or chunked) body, and a byte search for `"stream": true`. Answers:

- `POST /v1/chat/completions`: a fixed small chat completion; with `"stream": true` a chunked SSE
  stream of a role chunk, `STREAM_CHUNKS - 2` one-word content chunks and a finish chunk
  (`STREAM_CHUNKS` events in all), then `data: [DONE]`, all in one write (one write per event made
  the worker several times slower, and it must stay far faster than any gateway).
- `GET /v1/models`: the one model; `GET /health` (and anything under `/health`): 200.
- anything else: 404 with an OpenAI-shaped error.

Run: `python -m bench.fastworker [--host 127.0.0.1] [--port 0] [--model mock-model]`; once listening it
prints `FASTWORKER_READY http://HOST:PORT` and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import sys
import time
from typing import cast

__all__ = ["READY_PREFIX", "STREAM_CHUNKS", "build_answers", "main", "serve"]

READY_PREFIX = "FASTWORKER_READY"
STREAM_CHUNKS = 20
_STREAM_TRUE = re.compile(rb'"stream"\s*:\s*true')
_MAX_HEAD = 64 * 1024


def _response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type.decode()}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def build_answers(model: str) -> dict[str, bytes]:
    """Every answer, encoded once: `chat`, `models`, `health`, `not_found`, `stream`."""
    created = int(time.time())
    chat = {
        "id": "chatcmpl-fast",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the fast worker."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
    }
    models = {
        "object": "list",
        "data": [{"id": model, "object": "model", "created": created, "owned_by": "bench"}],
    }
    not_found = {"error": {"message": "not found", "type": "invalid_request_error", "code": "not_found"}}

    def event(delta: dict[str, str], finish: str | None) -> bytes:
        chunk = {
            "id": "chatcmpl-fast",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return _chunk(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")

    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
    )
    stream = [head + event({"role": "assistant", "content": ""}, None)]
    stream += [event({"content": f"w{i} "}, None) for i in range(STREAM_CHUNKS - 2)]
    stream.append(event({}, "stop"))
    stream.append(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    return {
        "chat": _response("200 OK", json.dumps(chat).encode()),
        "models": _response("200 OK", json.dumps(models).encode()),
        "health": _response("200 OK", b'{"status":"ok"}'),
        "not_found": _response("404 Not Found", json.dumps(not_found).encode()),
        "stream": b"".join(stream),
    }


def _dechunk(buf: bytes, pos: int) -> tuple[bytes, int] | None:
    """A chunked body starting at ``pos``: (body, offset after it), or None while incomplete."""
    parts: list[bytes] = []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(buf[pos:eol].split(b";", 1)[0], 16)
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)  # optional trailers, then the blank line
            return (b"".join(parts), end + 4) if end >= 0 else None
        if len(buf) < eol + 2 + size + 2:
            return None
        parts.append(buf[eol + 2 : eol + 2 + size])
        pos = eol + 2 + size + 2


class _Http(asyncio.Protocol):
    def __init__(self, answers: dict[str, bytes]) -> None:
        self._answers = answers
        self._buf = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        self._buf += data
        while self._transport is not None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > _MAX_HEAD:
                    self._transport.close()
                return
            head = self._buf[:end]
            length, chunked = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
            if chunked:
                parsed = _dechunk(self._buf, end + 4)
                if parsed is None:
                    return
                body, total = parsed
            else:
                total = end + 4 + length
                if len(self._buf) < total:
                    return
                body = self._buf[end + 4 : total]
            self._buf = self._buf[total:]
            self._answer(head.split(b" ", 2), body)

    def _answer(self, request_line: list[bytes], body: bytes) -> None:
        assert self._transport is not None
        method, path = request_line[0], request_line[1] if len(request_line) > 1 else b""
        path = path.split(b"?", 1)[0]
        if method == b"POST" and path == b"/v1/chat/completions":
            answer = self._answers["stream"] if _STREAM_TRUE.search(body) else self._answers["chat"]
        elif method == b"GET" and path == b"/v1/models":
            answer = self._answers["models"]
        elif method == b"GET" and path.startswith(b"/health"):
            answer = self._answers["health"]
        else:
            answer = self._answers["not_found"]
        self._transport.write(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


async def serve(host: str, port: int, model: str, ready: asyncio.Future[str] | None = None) -> None:
    """Serve until cancelled; the bound base URL is printed (and set on ``ready`` when given)."""
    loop = asyncio.get_running_loop()
    answers = build_answers(model)
    server = await loop.create_server(lambda: _Http(answers), host, port, backlog=1024, reuse_address=True)
    bound = server.sockets[0].getsockname()
    url = f"http://{bound[0]}:{bound[1]}"
    if ready is not None:
        ready.set_result(url)
    else:
        print(f"{READY_PREFIX} {url}", flush=True)
    async with server:
        await server.serve_forever()


async def _main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    task = asyncio.create_task(serve(args.host, args.port, args.model))
    stop = asyncio.create_task(stopping.wait())
    await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fastworker", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", default="mock-model")
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_main(args))
    else:
        uvloop.run(_main(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
