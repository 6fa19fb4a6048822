"""A worker process that lists ``mock-model`` and answers every chat request with the bytes last posted
to ``/_reply`` (status 200), for tests of what the gateway does with replies that are not chat
completions. Prints ``SMG_WORKER_READY http://127.0.0.1:PORT`` once listening; stops on SIGTERM."""

from __future__ import annotations

import socket

from aiohttp import web

_REPLY = web.AppKey("reply", dict)


async def _models(_: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": "mock-model", "object": "model"}]})


async def _health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _set_reply(request: web.Request) -> web.Response:
    request.app[_REPLY]["body"] = await request.read()
    return web.json_response({"ok": True})


async def _chat(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=request.app[_REPLY]["body"], content_type="application/json")


def main() -> None:
    app = web.Application()
    app[_REPLY] = {"body": b"this is not JSON"}
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", _health)
    app.router.add_post("/_reply", _set_reply)
    app.router.add_post("/v1/chat/completions", _chat)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    print(f"SMG_WORKER_READY http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    web.run_app(app, sock=sock, print=None, access_log=None)


if __name__ == "__main__":
    main()
