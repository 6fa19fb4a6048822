"""``--processes N``: one supervisor process and N serving processes on one listening socket.

The supervisor binds the gateway's port and starts N serving processes (``python -m smg`` with the
gateway's own arguments, `smg.serving.child`) that inherit the listening socket: every process
accepts from the one accept queue, so a connection waiting there is taken by a live process, never
lost with one that dies. The supervisor serves no request. It serves ``/metrics`` on the Prometheus
port: the values of every serving process, from a private multiprocess directory it owns
(`smg.observability.multiprocess`). It restarts a serving process that exits (at once when it had
run for `_STEADY_SECS`, else after a back-off doubling from 0.5 s to 30 s), and drops a dead
process's live gauges. The serving processes share the gateway's database (the ``--mcp-registry``
file, which the command line always sets), so keys, MCP servers and stored responses are the instance's.

On SIGTERM or SIGINT it closes its copy of the listening socket, forwards the signal to every serving
process (each closes its own and drains, `smg.serving.server.serve`), waits for them all, and exits 0.
A process still running `_KILL_MARGIN_SECS` past ``--shutdown-grace-period-secs`` is killed. Serving
processes get SIGTERM when the supervisor dies by any signal, SIGKILL included.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from smg.observability.multiprocess import MULTIPROC_ENV, aggregated, forget_process
from smg.observability.server import metrics_listener
from smg.serving.child import PARENT_ENV, READY_ENV, SOCKET_ENV
from smg.serving.server import bind, display_url
from smg.settings import Settings

log = logging.getLogger("smg")

_STEADY_SECS = 10.0
_BACKOFF_SECS = (0.5, 30.0)
_KILL_MARGIN_SECS = 15.0


class StartFailed(Exception):
    """A serving process exited before it served; ``code`` is its exit status (1 when it had none)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"a serving process exited with status {code} before it served")
        self.code = code


@dataclass
class _Process:
    proc: subprocess.Popen[bytes]
    ready: asyncio.Future[bool]  # True once it serves; False when its ready pipe closed without a word
    exited: asyncio.Future[int]
    started_at: float = field(default_factory=time.monotonic)


class Supervisor:
    """Starts, watches and stops the serving processes of one gateway (see the module's text)."""

    def __init__(self, argv: Sequence[str], sock_fd: int, directory: str, count: int) -> None:
        self._argv = list(argv)
        self._sock_fd = sock_fd
        self._directory = directory
        self._count = count
        self._procs: list[_Process] = []
        self._changed = asyncio.Event()
        self._stopping = False
        self._delay = 0.0

    @property
    def pids(self) -> list[int]:
        return [p.proc.pid for p in self._procs]

    def _spawn(self) -> _Process:
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        env = {
            **os.environ,
            MULTIPROC_ENV: self._directory,
            SOCKET_ENV: str(self._sock_fd),
            READY_ENV: str(write_fd),
            PARENT_ENV: str(os.getpid()),
        }
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "smg", *self._argv],
                env=env,
                stdin=subprocess.DEVNULL,
                pass_fds=(self._sock_fd, write_fd),
            )
        finally:
            os.close(write_fd)
        process = _Process(proc, loop.create_future(), loop.create_future())
        loop.add_reader(read_fd, self._on_ready, process, read_fd)
        pidfd = os.pidfd_open(proc.pid)
        loop.add_reader(pidfd, self._on_exit, process, pidfd)
        return process

    @staticmethod
    def _on_ready(process: _Process, fd: int) -> None:
        asyncio.get_running_loop().remove_reader(fd)
        word = os.read(fd, 1)
        os.close(fd)
        if not process.ready.done():
            process.ready.set_result(bool(word))

    def _on_exit(self, process: _Process, pidfd: int) -> None:
        asyncio.get_running_loop().remove_reader(pidfd)
        os.close(pidfd)
        process.exited.set_result(process.proc.wait())
        if not process.ready.done():
            process.ready.set_result(False)
        self._changed.set()

    async def start(self) -> None:
        """Start the serving processes and wait until each serves. Raises StartFailed (the others
        stopped) when one exits first."""
        self._procs = [self._spawn() for _ in range(self._count)]
        for process in self._procs:
            if not await process.ready:
                code = await process.exited
                if self._stopping:  # a signal came during the start: the processes are stopping
                    return
                await self.stop(signal.SIGTERM, grace_secs=0.0)
                raise StartFailed(code or 1)
        log.info("%d serving processes: %s", self._count, " ".join(map(str, self.pids)))

    async def watch(self) -> None:
        """Replace every serving process that exits, until `signal_all` is called."""
        while not self._stopping:
            await self._changed.wait()
            self._changed.clear()
            if self._stopping:
                return
            for process in [p for p in self._procs if p.exited.done()]:
                self._procs.remove(process)
                self._replace_later(process)

    def _replace_later(self, process: _Process) -> None:
        pid, code = process.proc.pid, process.exited.result()
        forget_process(pid, self._directory)
        lived = time.monotonic() - process.started_at
        low, high = _BACKOFF_SECS
        self._delay = 0.0 if lived >= _STEADY_SECS else min(high, max(low, self._delay * 2))
        log.warning(
            "serving process %d exited with status %s; starting a replacement in %g s", pid, code, self._delay
        )
        asyncio.get_running_loop().call_later(self._delay, self._replace)

    def _replace(self) -> None:
        if self._stopping:
            return
        process = self._spawn()
        self._procs.append(process)
        process.ready.add_done_callback(
            lambda done: log.info("serving process %d serves", process.proc.pid) if done.result() else None
        )

    def signal_all(self, sig: int) -> None:
        """Stop replacing processes and send ``sig`` to every serving process."""
        self._stopping = True
        self._changed.set()
        for process in self._procs:
            if not process.exited.done():
                process.proc.send_signal(sig)

    async def stop(self, sig: int, *, grace_secs: float) -> None:
        """`signal_all`, then wait for every serving process to exit (killing those still running
        `_KILL_MARGIN_SECS` after ``grace_secs``) and drop their live gauges."""
        if not self._stopping:
            self.signal_all(sig)
        running = [p.exited for p in self._procs if not p.exited.done()]
        if running:
            _, late = await asyncio.wait(running, timeout=grace_secs + _KILL_MARGIN_SECS)
            for process in self._procs:
                if process.exited in late:
                    log.warning("serving process %d did not stop in time; killing it", process.proc.pid)
                    process.proc.kill()
            if late:
                await asyncio.wait(late, timeout=_KILL_MARGIN_SECS)
        for process in self._procs:
            forget_process(process.proc.pid, self._directory)


async def supervise(settings: Settings, argv: Sequence[str], *, on_ready: Callable[[str, str], None]) -> None:
    """Run the gateway ``settings`` describe as ``settings.server.process_count`` serving processes,
    each started with the gateway arguments ``argv``, until SIGINT/SIGTERM (see the module's text).
    Once every process serves, calls ``on_ready(url, metrics_url)``. Raises OSError when a port cannot
    be bound, StartFailed when a serving process exits before it serves."""
    cfg = settings.server
    sock = bind(cfg.host, cfg.port)
    sock.set_inheritable(True)
    with sock, tempfile.TemporaryDirectory(prefix="smg-metrics-") as directory:
        supervisor = Supervisor(argv, sock.fileno(), directory, cfg.process_count)
        async with metrics_listener(
            aggregated(directory), host=cfg.metrics_host, port=cfg.prometheus_port
        ) as mport:
            loop = asyncio.get_running_loop()
            stopped = asyncio.Event()
            received: list[int] = []

            def on_signal(sig: int) -> None:
                received.append(sig)
                if len(received) == 1:
                    sock.close()  # new connections are refused once every process has closed its copy
                    stopped.set()
                supervisor.signal_all(sig)

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal, sig)
            await supervisor.start()
            if not stopped.is_set():
                port = int(sock.getsockname()[1])
                on_ready(display_url(cfg.host, port), f"{display_url(cfg.metrics_host, mport)}/metrics")
            await supervisor.watch()
            await supervisor.stop(received[0], grace_secs=cfg.shutdown_grace_period_secs)
    log.info("stopped")
