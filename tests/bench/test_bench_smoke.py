"""The benchmark's fast worker answers like an OpenAI server (correctness only, never speed), and the
report logic turns results into the right verdicts."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.fastworker import READY_PREFIX, STREAM_CHUNKS
from bench.load import ttfb_ms
from bench.render import render
from bench.report import summarize, verdicts
from smg.testing.processes import spawn, stop, wait_for_line

REPO = Path(__file__).resolve().parents[2]
BODY = {"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def fastworker() -> Iterator[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = spawn([sys.executable, "-m", "bench.fastworker", "--port", "0"], env=env)
    try:
        yield wait_for_line(proc, READY_PREFIX, timeout=20)
    finally:
        assert stop(proc) == 0


def test_non_stream_answer_is_a_chat_completion(fastworker: str) -> None:
    with httpx.Client(timeout=5) as client:
        resp = client.post(f"{fastworker}/v1/chat/completions", json=BODY)
        again = client.post(f"{fastworker}/v1/chat/completions", json=BODY)  # same kept-alive connection
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert (
        body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    assert again.json() == body


@pytest.mark.parametrize("flag", ['"stream": true', '"stream":true'])
def test_stream_is_twenty_events_then_done(fastworker: str, flag: str) -> None:
    content = json.dumps(BODY)[:-1] + ", " + flag + "}"
    headers = {"Content-Type": "application/json"}
    with (
        httpx.Client(timeout=5) as client,
        client.stream("POST", f"{fastworker}/v1/chat/completions", content=content, headers=headers) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/event-stream"
        events = [line[len("data: ") :] for line in resp.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks: list[dict[str, Any]] = [json.loads(e) for e in events[:-1]]
    assert len(chunks) == STREAM_CHUNKS == 20
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in chunks].count("stop") == 1
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_models_health_and_unknown_paths(fastworker: str) -> None:
    with httpx.Client(timeout=5) as client:
        models = client.get(f"{fastworker}/v1/models")
        health = client.get(f"{fastworker}/health")
        missing = client.post(f"{fastworker}/v1/embeddings", json={})
    assert models.status_code == 200
    assert [m["id"] for m in models.json()["data"]] == ["mock-model"]
    assert health.status_code == 200
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"


def test_ttfb_client_reads_whole_streams_on_one_connection(fastworker: str) -> None:
    assert ttfb_ms(f"{fastworker}/v1/chat/completions", 5, timeout=20) > 0


def _run(rps: float, p50: float, cpu: float) -> dict[str, Any]:
    run = {"rps": rps, "p50_ms": p50, "p99_ms": p50 * 2, "requests": 100, "seconds": 1.0, "errors": 0}
    runs = {s: [run] for s in ("c1", "c16", "c64", "stream16")}
    cpu_us = {s: [cpu] for s in runs}
    return {"status": "ok", "runs": runs, "cpu_us": cpu_us, "ttfb_ms": [p50], "rss_peak_mib": 80.0}


def test_verdicts_compare_smg_with_direct_and_the_rust_gateway() -> None:
    res: dict[str, Any] = {
        "targets": {
            "direct": _run(10_000, 0.1, 10),
            "smg": _run(3_000, 0.4, 200),
            "SMG": _run(4_000, 0.2, 100),
            "litellm": {"status": "skipped", "reason": "not installed"},
        },
        "toolloop": {"http": {"overhead_ms": 2.0, "client_overhead_ms": 1.5}, "parallel": {"ratio": 1.05}},
    }
    empty = {"rps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "requests": 0, "seconds": 1.0, "errors": 0}
    res["targets"]["smg"]["runs"]["c1"].append(empty)  # a run in which nothing completed is left out
    summary = summarize(res)
    assert summary["smg"]["rps_c16_vs_SMG"] == pytest.approx(0.75)
    assert summary["smg"]["rps_c1"] == 3_000
    assert summary["smg"]["added_p50_c1_ms"] == pytest.approx(0.3)
    results = {v["key"]: v["result"] for v in verdicts(res, summary)}
    assert results == {
        "rps_c16_vs_SMG": "pass",
        "added_p50_c1_ms": "pass",
        "cpu_us_per_req": "pass",
        "stream_rps_vs_SMG": "miss",
        "rss_peak_mib": "pass",
        "mcp_overhead_p50_ms": "miss",
        "parallel4_vs_one": "pass",
    }
    del res["targets"]["SMG"]
    skipped = {v["key"]: v["result"] for v in verdicts(res, summarize(res))}
    assert skipped["rps_c16_vs_SMG"] == "skipped (SMG was not measured)"


def test_chunked_and_pipelined_request_bodies(fastworker: str) -> None:
    """A gateway may send its body chunked, and several requests back to back on one connection."""
    host, port = fastworker.removeprefix("http://").split(":")
    body = b'{"model": "mock-model", "stream": true}'
    chunked = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n" % (10, body[:10])
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) - 10, body[10:])
    )
    plain = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(chunked[:25])
        sock.sendall(chunked[25:] + plain)
        data = b""
        while b'"object": "list"' not in data:
            got = sock.recv(65536)
            assert got, f"connection closed early: {data[-200:]!r}"
            data += got
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert b"text/event-stream" in data
    assert b"data: [DONE]" in data


def _lua_body(script: str) -> dict[str, Any]:
    """The JSON body a wrk script sends: its `wrk.body` concatenation, `filler` substituted."""
    text = (REPO / "bench" / script).read_text()
    filler = "lorem ipsum dolor sit amet " * 32
    assert 'string.rep("lorem ipsum dolor sit amet ", 32)' in text
    expr = text.split("wrk.body = ", 1)[1].split("\ndofile", 1)[0]
    parts = [p.strip() for p in expr.split("..")]
    body = "".join(filler if p == "filler" else p.strip("'") for p in parts)
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def test_the_responses_scripts_send_the_chat_scripts_content() -> None:
    """Responses against chat compares the same request: `instructions` is chat's system message,
    `input` its user message, `max_output_tokens` its `max_tokens`; streamed only in the stream scripts."""
    chat, stream = _lua_body("chat.lua"), _lua_body("chat_stream.lua")
    (system, user) = chat["messages"]
    for script, extra in (
        ("responses.lua", {}),
        ("responses_nostore.lua", {"store": False}),
        ("responses_stream.lua", {"stream": True}),
    ):
        body = _lua_body(script)
        assert body == {
            "model": chat["model"],
            "instructions": system["content"],
            "input": user["content"],
            "max_output_tokens": chat["max_tokens"],
            **extra,
        }, script
    assert stream == {**chat, "stream": True}


def _report_input(with_responses: bool) -> dict[str, Any]:
    smg = _run(3_000, 0.4, 200) | {"version": "0.1.0"}
    smg["cpu_us"]["stream16"] = [300.0]
    if with_responses:
        for scen, cpu in (
            ("resp16", [500.0, 420.0, 460.0]),
            ("resp_nostore16", [250.0]),
            ("resp_stream16", [600.0]),
        ):
            smg["runs"][scen] = [dict(smg["runs"]["c16"][0], rps=1_000.0)]
            smg["cpu_us"][scen] = cpu
    return {
        "started": "2026-12-03T12:00:00+00:00",
        "mode": "smoke",
        "argv": ["python", "-m", "bench", "--smoke"],
        "rounds": 1,
        "seconds": 1.0,
        "pinning": {"load": 0, "gateway": 1},
        "machine": {
            "cpu": "x",
            "cores": 2,
            "kernel": "k",
            "python": "3.11",
            "uvloop": "u",
            "wrk": "w",
            "load_avg_at_start": [0.0, 0.0, 0.0],
        },
        "targets": {"direct": _run(10_000, 0.1, 10), "smg": smg},
        "errors": [],
        "notes": [],
        "skipped": [],
    }


def test_the_report_puts_the_responses_api_beside_chat() -> None:
    res = _report_input(with_responses=True)
    res["summary"] = summary = summarize(res)
    res["verdicts"] = verdicts(res, summary)
    smg = summary["smg"]
    assert smg["cpu_us_resp16"] == 460.0  # the median of the rounds
    assert smg["cpu_resp16_vs_chat"] == pytest.approx(460 / 200)
    assert smg["cpu_resp_nostore16_vs_chat"] == pytest.approx(250 / 200)
    assert smg["cpu_resp_stream16_vs_chat"] == pytest.approx(600 / 300)  # against chat's streamed run
    assert "cpu_us_resp16" not in summary["direct"]
    md = render(res)
    assert "## The Responses API (smg)" in md
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines() if line.startswith("| ")}
    assert rows["Responses, stored (the default)"].endswith("| 1,000 | 460 | 500, 420, 460 | 2.30x |")
    assert rows["Responses, `store: false`"].endswith("| 250 | 250 | 1.25x |")
    assert rows["Responses, streamed, stored"].endswith("| 600 | 600 | 2.00x |")
    assert rows["chat"].endswith("| 200 | 200 | 1.00x |")


def test_a_run_without_the_responses_scenarios_has_no_responses_section() -> None:
    res = _report_input(with_responses=False)
    res["summary"] = summarize(res)
    res["verdicts"] = verdicts(res, res["summary"])
    assert "Responses API" not in render(res)
