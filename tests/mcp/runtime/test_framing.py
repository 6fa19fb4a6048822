"""The framing under the bounded transports: lines split the same however the bytes arrive, and what an
oversized message was is read from its edges only."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from smg.mcp.runtime.framing import Ended, Kind, Line, LineSplitter, Oversized, Started, message_limit
from smg.mcp.runtime.sse_filter import SseFilter

LIMIT = 1000


def _split(splitter: LineSplitter, data: bytes, sizes: random.Random | None) -> list[tuple[str, Any]]:
    """Feed ``data`` whole or in random pieces; each event as (kind, data or (head, tail, size))."""
    pieces = [data]
    if sizes is not None:
        pieces, pos = [], 0
        while pos < len(data):
            step = sizes.randint(1, 40)
            pieces.append(data[pos : pos + step])
            pos += step
    out: list[tuple[str, Any]] = []
    for piece in pieces:
        for event in splitter.feed(piece):
            if isinstance(event, Line):
                out.append(("line", event.data))
            elif isinstance(event, Started):
                out.append(("started", event.big.head[:20]))
            elif isinstance(event, Ended):
                out.append(("ended", (event.big.head[:20], event.big.tail[-20:], event.big.size)))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_lines_are_the_same_however_the_bytes_are_split(seed: int) -> None:
    big = b"B" + b"b" * 5000 + b"E"
    data = b"one\r\ntwo\rthree\n\n" + big + b"\r\n" + b"x" * LIMIT + b"\rlast\n"
    whole = _split(LineSplitter(LIMIT, cr=True), data, None)
    assert whole == [
        ("line", b"one"),
        ("line", b"two"),
        ("line", b"three"),
        ("line", b""),
        ("started", big[:20]),
        ("ended", (big[:20], big[-20:], len(big))),
        ("line", b"x" * LIMIT),  # exactly the limit is kept
        ("line", b"last"),
    ]
    assert _split(LineSplitter(LIMIT, cr=True), data, random.Random(seed)) == whole


def test_without_cr_only_lf_ends_a_line() -> None:
    assert _split(LineSplitter(LIMIT), b"a\rb\r\nc\n", None) == [("line", b"a\rb\r"), ("line", b"c")]


def _big(message: dict[str, Any] | str) -> Oversized:
    text = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"))
    raw = text.encode("utf-8", "surrogateescape")  # lets a case hold invalid UTF-8
    big = Oversized(raw[:LIMIT])
    big.add(raw[LIMIT:])
    return big


FILLER = "f" * 20_000


@pytest.mark.parametrize(
    ("message", "early", "late"),
    [
        ({"jsonrpc": "2.0", "id": 7, "result": {"text": FILLER}}, (Kind.RESPONSE, 7), (Kind.RESPONSE, 7)),
        (
            {"jsonrpc": "2.0", "id": "a", "error": {"message": FILLER}},
            (Kind.RESPONSE, "a"),
            (Kind.RESPONSE, "a"),
        ),
        ({"result": {"text": FILLER}, "jsonrpc": "2.0", "id": 8}, (Kind.UNKNOWN, None), (Kind.RESPONSE, 8)),
        ({"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"p": FILLER}}, (Kind.SERVER_MESSAGE, 1), None),
        (
            {"method": "x", "params": {"p": FILLER}, "jsonrpc": "2.0", "id": 2},
            (Kind.SERVER_MESSAGE, None),
            (Kind.SERVER_MESSAGE, 2),
        ),
        (
            {"params": {"p": FILLER}, "jsonrpc": "2.0", "method": "n"},
            (Kind.UNKNOWN, None),
            (Kind.SERVER_MESSAGE, None),
        ),
        # ids inside the result, or inside a string that ends the message, are not the message's id
        ({"result": {"text": FILLER, "id": 5}}, (Kind.UNKNOWN, None), (Kind.UNKNOWN, None)),
        ({"jsonrpc": "2.0", "result": FILLER + '","id":9}'}, (Kind.UNKNOWN, None), (Kind.UNKNOWN, None)),
        ({"jsonrpc": "2.0", "id": True, "result": FILLER}, (Kind.UNKNOWN, None), (Kind.UNKNOWN, None)),
        ("[" + FILLER + "]", (Kind.UNKNOWN, None), (Kind.UNKNOWN, None)),
        ('{"id":"\udcff","result":"' + FILLER + '"}', (Kind.UNKNOWN, None), (Kind.UNKNOWN, None)),
    ],
)
def test_an_oversized_message_is_told_from_its_edges(
    message: dict[str, Any] | str, early: tuple[Kind, Any], late: tuple[Kind, Any] | None
) -> None:
    big = _big(message)
    assert big.identify(complete=False) == early
    assert big.identify(complete=True) == (late or early)


def test_the_message_limit_follows_the_output_limit() -> None:
    assert message_limit(256 * 1024) == 1536 * 1024
    assert message_limit(0) == 64 * 1024 * 1024


@pytest.mark.parametrize("seed", range(3))
def test_the_event_filter_gives_the_same_stream_however_the_bytes_are_split(seed: int) -> None:
    data = (
        b": hello\r\n"
        b"event: message\nid: 1\ndata: "
        + json.dumps({"jsonrpc": "2.0", "id": 3, "result": {}}).encode()
        + b"\n\n"
        b"id: 2\ndata: "
        + json.dumps({"jsonrpc": "2.0", "id": 4, "result": {"t": FILLER}}).encode()
        + b"\r\n\r\n"
        b":" + b"c" * 3000 + b"\n"  # a comment over the limit never counts towards an event
        b"data: {}\n\n"
    )
    whole = SseFilter(LIMIT, request_id=None, name="t").feed(data)
    events = whole.split(b"\n\n")
    assert events[0] == b': hello\nevent: message\nid: 1\ndata: {"jsonrpc": "2.0", "id": 3, "result": {}}'
    assert events[1].startswith(b"data: ") and events[1].endswith(b"\nid: 2")
    assert json.loads(events[1].split(b"\n")[0][6:])["id"] == 4
    assert events[2:] == [b"data: {}", b""]
    rng = random.Random(seed)
    pieces = SseFilter(LIMIT, request_id=None, name="t")
    out, pos = b"", 0
    while pos < len(data):
        step = rng.randint(1, 50)
        out += pieces.feed(data[pos : pos + step])
        pos += step
    assert out == whole
