"""Putting the gateway on a socket: everything between the listening socket and the ASGI app.

- `smg.serving.server`: the listening socket, the uvicorn server that reports when it listens, the
  uvicorn configuration of the gateway, and `serve`, which runs a whole gateway (context, app, metrics
  listener) until SIGINT/SIGTERM;
- `smg.serving.http_protocol`: the HTTP/1.1 connection protocol with bounded request heads;
- `smg.serving.allocator`: the C allocator settings of a long-running gateway;
- `smg.serving.supervisor`: ``--processes N``, a supervisor sharing the listening socket with N serving
  processes (restarts, drain, the metrics of all of them); `smg.serving.child`: what a serving process
  inherits from it.

Used by the command line (``smg launch``, ``smg demo``) and by the in-process test gateway
(`smg.testing.gateway`), so that tests are served the way the command serves. Sits above `smg.app` and
`smg.context` and below `smg.testing` and `smg.cli` (ADR 0010).
"""
