"""`CoalescingTransport`: the writes of one event-loop step leave as one write, in order; close flushes."""

from __future__ import annotations

import asyncio
from typing import Any

from smg.serving.http_protocol import CoalescingTransport


class _Recording:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> Any:
        return f"info:{name}"


async def test_the_writes_of_one_step_leave_as_one_write_in_order() -> None:
    real = _Recording()
    transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(memoryview(b"body"))  # type: ignore[arg-type]
    assert real.writes == []  # held until the end of this step
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"next"]


async def test_close_sends_what_is_held_first_and_the_rest_is_passed_through() -> None:
    real = _Recording()
    transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"last answer")
    assert not transport.is_closing()
    transport.close()
    assert real.writes == [b"last answer"] and real.closed and transport.is_closing()
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert real.writes == [b"last answer"]
    assert transport.get_extra_info("peername") == "info:peername"


async def test_many_writes_of_one_step_leave_once_and_a_buffer_changed_after_its_write_is_not() -> None:
    real = _Recording()
    transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    buffer = bytearray(b"chunk-0;")
    transport.write(buffer)  # type: ignore[arg-type]
    buffer[:] = b"CHANGED;"
    for i in range(1, 1000):
        transport.write(f"chunk-{i};".encode())
    await asyncio.sleep(0)
    assert real.writes == ["".join(f"chunk-{i};" for i in range(1000)).encode()]
