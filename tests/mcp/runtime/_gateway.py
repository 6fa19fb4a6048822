"""A gateway stand-in for the orphan test: runs a pool with a stdio faults server and a stubborn stdio
child (ignores stdin EOF and SIGTERM, so only the death signal can end it), prints both PIDs, then waits
to be killed."""

from __future__ import annotations

import sys

import anyio

from smg.mcp.registry.config import ServerSpec
from tests.mcp.runtime._support import eventually, make_pool, stdio_spec

STUBBORN = ServerSpec(
    name="stubborn",
    transport="stdio",
    command=sys.executable,
    args=("-S", "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"),
)


async def main() -> None:
    async with make_pool() as pool:
        await pool.reconcile([stdio_spec("faults"), STUBBORN])
        await eventually(lambda: pool.statuses()[0].state == "connected")
        await eventually(lambda: pool.statuses()[1].pid is not None)
        print("CHILD_PIDS", *(status.pid for status in pool.statuses()), flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main)
