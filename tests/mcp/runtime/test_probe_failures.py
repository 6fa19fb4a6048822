"""Why a probe failed, in its error: the stdio server's last stderr lines (bounded), and which step of the
session timed out and after how long. Real child processes."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from smg.mcp.errors import McpServerUnreachable
from smg.mcp.registry.config import ServerSpec
from smg.mcp.runtime.probe import probe_tools
from smg.mcp.runtime.stdio import StderrPipe

pytestmark = pytest.mark.e2e

# A stdio server that completes the handshake but never answers tools/list.
_MUTE_LISTER = """\
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg or msg.get("method") == "tools/list":
        continue
    if msg.get("method") == "initialize":
        info = {"name": "mute", "version": "1"}
        result = {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                  "serverInfo": info}
        reply = {"jsonrpc": "2.0", "id": msg["id"], "result": result}
    else:
        reply = {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "no such method"}}
    print(json.dumps(reply), flush=True)
"""


def _python(name: str, *args: str) -> ServerSpec:
    return ServerSpec(name=name, transport="stdio", command=sys.executable, args=args)


async def test_the_stderr_pipe_keeps_only_the_last_few_lines_each_cut_short() -> None:
    chatty = "import sys\nfor i in range(2000): print(f'{i:04d} ' + 'x' * 500, file=sys.stderr)"
    async with StderrPipe("chatty") as pipe:
        assert pipe.errlog is not None
        child = await anyio.open_process(
            [sys.executable, "-c", chatty],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=pipe.errlog,
        )
        try:
            pipe.spawned()
            with anyio.fail_after(30):
                await pipe.exited.wait()
        finally:
            with contextlib.suppress(ProcessLookupError):  # it has exited and been reaped already
                child.kill()
            with anyio.fail_after(30):
                await child.wait()
            await child.aclose()
    assert [line[:4] for line in pipe.tail] == ["1995", "1996", "1997", "1998", "1999"]
    assert all(len(line) <= 200 for line in pipe.tail)


async def test_a_command_that_cannot_be_run_is_named_with_the_reason() -> None:
    missing = ServerSpec(name="missing", transport="stdio", command="/nonexistent/server")
    with pytest.raises(McpServerUnreachable) as caught:
        await probe_tools(missing, timeout=10)
    assert "cannot run '/nonexistent/server': No such file or directory" in caught.value.reason


async def test_a_server_that_dies_at_start_shows_the_end_of_its_traceback() -> None:
    lines = "\n".join(f"print('line {i}', file=__import__('sys').stderr)" for i in range(20))
    crash = _python("crash", "-c", f"{lines}\nraise SystemExit('fatal: no database')")
    with pytest.raises(McpServerUnreachable) as caught:
        await probe_tools(crash, timeout=10)
    reason = caught.value.reason
    assert "fatal: no database" in reason and "line 19" in reason
    assert "line 10" not in reason  # bounded: only the last few lines


async def test_a_handshake_that_times_out_says_so_and_after_how_long() -> None:
    silent = _python("silent", "-c", "import time; time.sleep(600)")
    with pytest.raises(McpServerUnreachable) as caught:
        await probe_tools(silent, timeout=1)
    assert caught.value.reason == "timed out: no answer to initialize within 1 s"


async def test_a_tool_listing_that_times_out_says_so_and_after_how_long(tmp_path: Path) -> None:
    script = tmp_path / "mute_lister.py"
    script.write_text(_MUTE_LISTER, encoding="utf-8")
    with pytest.raises(McpServerUnreachable) as caught:
        await probe_tools(_python("mute", str(script)), timeout=2)
    assert caught.value.reason == "timed out: no answer to tools/list within 2 s"
