"""Behaviour of the scripted worker, through HTTP against an in-process (or subprocess) instance."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from smg.testing.worker import Faults, RunningWorker, WorkerConfig, running_worker

_BOUND = aiohttp.ClientTimeout(total=10)


@pytest.fixture
async def worker() -> AsyncIterator[RunningWorker]:
    async with running_worker(WorkerConfig(models=("mock-model", "other-model"))) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=_BOUND) as session:
        yield session


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


async def _chat(
    http: aiohttp.ClientSession, worker: RunningWorker, body: dict[str, Any], **kwargs: Any
) -> tuple[int, Any]:
    async with http.post(
        f"{worker.url}/v1/chat/completions", json={"model": "mock-model", **body}, **kwargs
    ) as response:
        return response.status, await response.json()


async def _stream(http: aiohttp.ClientSession, worker: RunningWorker, body: dict[str, Any]) -> list[Any]:
    """Return the decoded SSE data payloads, with the literal string "[DONE]" for the terminator."""
    async with http.post(
        f"{worker.url}/v1/chat/completions", json={"model": "mock-model", "stream": True, **body}
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        text = await response.text()
    return _decode_events(text)


def _decode_events(text: str) -> list[Any]:
    events = [e for e in text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    return [e[6:] if e == "data: [DONE]" else json.loads(e[6:]) for e in events]


def _content_of(events: list[Any]) -> str:
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1] if e["choices"])


async def test_models_lists_configured_models(worker: RunningWorker, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{worker.url}/v1/models") as response:
        body = await response.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["mock-model", "other-model"]
    assert body["data"][0] == {"id": "mock-model", "object": "model", "created": 0, "owned_by": "smg-testing"}


async def test_non_stream_chat_echoes_last_user_message_with_usage(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        _user("first"),
        {"role": "assistant", "content": "ok"},
        _user("hello there world"),
    ]
    status, body = await _chat(http, worker, {"messages": messages})
    assert status == 200
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-mock-")
    assert body["model"] == "mock-model"
    assert isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "echo: hello there world"}
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}


async def test_list_content_parts_are_joined(worker: RunningWorker, http: aiohttp.ClientSession) -> None:
    parts = [
        {"type": "text", "text": "alpha"},
        {"type": "image_url", "image_url": {"url": "x"}},
        {"type": "text", "text": "beta"},
    ]
    _, body = await _chat(http, worker, {"messages": [{"role": "user", "content": parts}]})
    assert body["choices"][0]["message"]["content"] == "echo: alpha\nbeta"


async def test_max_tokens_truncates_reply_with_length_finish(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    _, body = await _chat(http, worker, {"messages": [_user("a b c d e")], "max_tokens": 3})
    assert body["choices"][0]["message"]["content"] == "echo: a b"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3


async def test_stream_chunks_reassemble_to_non_stream_content(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    request = {"messages": [_user("the  quick\nbrown fox ")]}
    _, plain = await _chat(http, worker, request)
    events = await _stream(http, worker, request)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len({(c["id"], c["created"]) for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert _content_of(events) == plain["choices"][0]["message"]["content"]
    assert len(chunks) == 1 + 5 + 1  # role, one per word, finish
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all("usage" not in c for c in chunks)


async def test_stream_usage_chunk_only_when_requested(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    events = await _stream(
        http, worker, {"messages": [_user("hi you")], "stream_options": {"include_usage": True}}
    )
    assert events[-1] == "[DONE]"
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert events[-3]["choices"][0]["finish_reason"] == "stop"


async def test_unknown_model_is_404_model_not_found(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    status, body = await _chat(http, worker, {"model": "nope", "messages": [_user("x")]})
    assert status == 404
    assert body["error"]["code"] == "model_not_found"
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == "model"


async def test_invalid_json_and_missing_messages_are_400(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{worker.url}/v1/chat/completions", data=b"{not json", headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["type"] == "invalid_request_error"
    status, body = await _chat(http, worker, {})
    assert status == 400
    assert body["error"]["param"] == "messages"


async def test_tool_script_runs_two_rounds_with_parallel_calls_then_reports_tool_results(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    script = 'please\nCALL search {"q": "a"}\nCALL fetch {"url": "u"}\nNEXT\nCALL search {"q": "b"}'
    tools = [_tool("search"), _tool("fetch")]
    messages: list[dict[str, Any]] = [_user(script)]

    _, first = await _chat(http, worker, {"messages": messages, "tools": tools})
    message = first["choices"][0]["message"]
    assert first["choices"][0]["finish_reason"] == "tool_calls"
    assert message["content"] is None
    assert [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in message["tool_calls"]
    ] == [("call_1_0", "search", {"q": "a"}), ("call_1_1", "fetch", {"url": "u"})]
    messages += [message] + [
        {"role": "tool", "tool_call_id": c["id"], "content": f"r{i}"}
        for i, c in enumerate(message["tool_calls"])
    ]

    _, second = await _chat(http, worker, {"messages": messages, "tools": tools})
    message = second["choices"][0]["message"]
    assert [(c["id"], c["function"]["arguments"]) for c in message["tool_calls"]] == [
        ("call_2_0", '{"q": "b"}')
    ]
    messages += [message, {"role": "tool", "tool_call_id": "call_2_0", "content": "r2"}]

    _, final = await _chat(http, worker, {"messages": messages, "tools": tools})
    assert final["choices"][0]["message"]["content"] == "tool results: r0 | r1 | r2"
    assert final["choices"][0]["finish_reason"] == "stop"


async def test_tool_calls_stream_as_header_then_argument_fragments(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    events = await _stream(
        http,
        worker,
        {"messages": [_user('CALL search {"query": "long enough"}')], "tools": [_tool("search")]},
    )
    assert events[-1] == "[DONE]"
    deltas = [e["choices"][0]["delta"] for e in events[1:-2]]
    header, fragments = deltas[0]["tool_calls"][0], [d["tool_calls"][0] for d in deltas[1:]]
    assert header == {
        "index": 0,
        "id": "call_1_0",
        "type": "function",
        "function": {"name": "search", "arguments": ""},
    }
    assert 2 <= len(fragments) <= 3
    assert all(f["index"] == 0 for f in fragments)
    assert "".join(f["function"]["arguments"] for f in fragments) == '{"query": "long enough"}'
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_forever_calls_every_round_with_round_number_substituted(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    tools = [_tool("search"), _tool("ping")]
    messages: list[dict[str, Any]] = [_user('FOREVER search {"page": {n}}\nFOREVER ping {}')]
    seen = []
    for round_no in range(1, 4):
        _, body = await _chat(http, worker, {"messages": messages, "tools": tools})
        message = body["choices"][0]["message"]
        seen.append([(c["id"], c["function"]["arguments"]) for c in message["tool_calls"]])
        messages += [message] + [
            {"role": "tool", "tool_call_id": c["id"], "content": "x"} for c in message["tool_calls"]
        ]
        assert round_no == len(seen)
    assert seen == [[(f"call_{n}_0", f'{{"page": {n}}}'), (f"call_{n}_1", "{}")] for n in (1, 2, 3)]


async def test_raw_sends_arguments_verbatim(worker: RunningWorker, http: aiohttp.ClientSession) -> None:
    _, body = await _chat(
        http, worker, {"messages": [_user('RAW search {"q": unterminated')], "tools": [_tool("search")]}
    )
    call = body["choices"][0]["message"]["tool_calls"][0]
    assert call["function"] == {"name": "search", "arguments": '{"q": unterminated'}


async def test_directives_for_tools_not_offered_are_skipped(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    script = 'CALL secret {}\nCALL search {"q": 1}\nNEXT\nCALL secret {}'
    _, body = await _chat(http, worker, {"messages": [_user(script)], "tools": [_tool("search")]})
    assert [c["function"]["name"] for c in body["choices"][0]["message"]["tool_calls"]] == ["search"]
    _, only_unoffered = await _chat(
        http, worker, {"messages": [_user("CALL secret {}")], "tools": [_tool("search")]}
    )
    assert only_unoffered["choices"][0]["message"]["content"] == "echo: CALL secret {}"


async def test_directives_without_tools_are_plain_text(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    _, body = await _chat(http, worker, {"messages": [_user("CALL search {}")]})
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "echo: CALL search {}"}


async def test_status_fault_fails_every_chat_request(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    worker.faults.status = 429
    status, body = await _chat(http, worker, {"messages": [_user("x")]})
    assert status == 429
    assert body["error"]["code"] == "injected_fault"


async def test_fail_every_two_fails_even_requests(worker: RunningWorker, http: aiohttp.ClientSession) -> None:
    worker.faults.fail_every = 2
    worker.faults.fail_status = 502
    statuses = [(await _chat(http, worker, {"messages": [_user("x")]}))[0] for _ in range(6)]
    assert statuses == [200, 502, 200, 502, 200, 502]


async def test_hanging_request_never_answers_until_client_gives_up(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    worker.faults.hang = True
    with pytest.raises(TimeoutError):
        await _chat(http, worker, {"messages": [_user("x")]}, timeout=aiohttp.ClientTimeout(total=0.2))
    worker.faults.hang = False
    assert (await _chat(http, worker, {"messages": [_user("x")]}))[0] == 200


async def test_drop_after_chunks_truncates_stream_without_done(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    worker.faults.drop_after_chunks = 2
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.post(
            f"{worker.url}/v1/chat/completions",
            json={"model": "mock-model", "stream": True, "messages": [_user("one two three four")]},
        ) as response:
            assert response.status == 200
            async for data in response.content.iter_any():
                received += data
    events = _decode_events(received.decode())
    assert len(events) == 2
    assert "[DONE]" not in events
    assert _content_of([*events, "[DONE]"]) == "echo: "


async def test_hold_after_chunks_pauses_a_stream_until_the_fault_is_cleared(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{worker.url}/_smg/faults", json={"hold_after_chunks": 2}) as response:
        assert response.status == 200
    body = {"model": "mock-model", "stream": True, "messages": [_user("one two three")]}
    received = b""
    async with asyncio.timeout(30), http.post(f"{worker.url}/v1/chat/completions", json=body) as response:
        while len(_decode_events(received.decode())) < 2:
            received += await response.content.readany()
        assert len(_decode_events(received.decode())) == 2  # held: nothing more until the fault is cleared
        async with http.post(f"{worker.url}/_smg/faults", json={"hold_after_chunks": None}) as cleared:
            assert cleared.status == 200
        received += await response.content.read()
    events = _decode_events(received.decode())
    assert _content_of(events) == "echo: one two three"
    assert events[-1] == "[DONE]"


async def test_delay_faults_still_answer_in_full(worker: RunningWorker, http: aiohttp.ClientSession) -> None:
    worker.faults.delay_ms = 1
    worker.faults.chunk_delay_ms = 1
    events = await _stream(http, worker, {"messages": [_user("a b")]})
    assert _content_of(events) == "echo: a b"
    assert events[-1] == "[DONE]"


async def test_health_reports_fault_status_and_counts_checks(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{worker.url}/health") as response:
        assert (response.status, await response.json()) == (200, {"status": "ok"})
    worker.faults.health_status = 503
    async with http.get(f"{worker.url}/health") as response:
        assert response.status == 503
    async with http.get(f"{worker.url}/_smg/stats") as response:
        assert await response.json() == {
            "chat_requests": 0,
            "completions_requests": 0,
            "embeddings_requests": 0,
            "health_checks": 2,
            "stream_bytes_sent": 0,
            "stream_writes_blocked": 0,
        }


async def test_faults_are_set_and_reset_at_runtime_over_http(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{worker.url}/_smg/faults", json={"status": 500, "delay_ms": 0}) as response:
        assert (await response.json())["status"] == 500
    assert worker.faults.status == 500
    assert (await _chat(http, worker, {"messages": [_user("x")]}))[0] == 500
    async with http.post(f"{worker.url}/_smg/faults", json={"reset": True}) as response:
        assert await response.json() == Faults().to_dict()
    async with http.get(f"{worker.url}/_smg/faults") as response:
        assert await response.json() == Faults().to_dict()
    assert (await _chat(http, worker, {"messages": [_user("x")]}))[0] == 200


async def test_invalid_fault_update_is_rejected_and_changes_nothing(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    for bad in ({"status": 500, "hang": "yes"}, {"nonsense": 1}, {"fail_every": True}, [1]):
        async with http.post(f"{worker.url}/_smg/faults", json=bad) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "invalid_value"
    assert worker.faults == Faults()


async def test_runtime_fail_every_counts_from_when_it_was_set(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    assert (await _chat(http, worker, {"messages": [_user("x")]}))[0] == 200
    async with http.post(f"{worker.url}/_smg/faults", json={"fail_every": 2}) as response:
        assert response.status == 200
    statuses = [(await _chat(http, worker, {"messages": [_user("x")]}))[0] for _ in range(4)]
    assert statuses == [200, 503, 200, 503]


async def test_requests_are_recorded_with_headers_and_unknown_fields(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    body = {"messages": [_user("x")], "x_custom": {"k": [1, 2]}}
    await _chat(http, worker, body, headers={"TraceParent": traceparent})
    async with http.get(f"{worker.url}/_smg/requests") as response:
        recorded = await response.json()
    assert len(recorded) == 1
    assert recorded[0]["headers"]["traceparent"] == traceparent
    assert recorded[0]["body"] == {"model": "mock-model", **body}
    async with http.delete(f"{worker.url}/_smg/requests") as response:
        assert response.status == 200
    async with http.get(f"{worker.url}/_smg/requests") as response:
        assert await response.json() == []


async def test_request_log_keeps_only_the_last_fifty(
    worker: RunningWorker, http: aiohttp.ClientSession
) -> None:
    for i in range(55):
        await _chat(http, worker, {"messages": [_user(str(i))]})
    async with http.get(f"{worker.url}/_smg/requests") as response:
        recorded = await response.json()
    assert [r["body"]["messages"][0]["content"] for r in recorded] == [str(i) for i in range(5, 55)]
    assert worker.stats.chat_requests == 55


@pytest.mark.e2e
async def test_subprocess_worker_announces_port_serves_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smg.testing.worker",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--model",
        "a",
        "--model",
        "b",
        "--fail-every",
        "3",
        "--fail-status",
        "500",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            line = (await process.stdout.readline()).decode()
        prefix, url = line.split()
        assert prefix == "SMG_WORKER_READY"
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        async with aiohttp.ClientSession(timeout=_BOUND) as http:
            async with http.get(f"{url}/v1/models") as response:
                assert [m["id"] for m in (await response.json())["data"]] == ["a", "b"]
            async with http.get(f"{url}/_smg/faults") as response:
                faults = await response.json()
        assert (faults["fail_every"], faults["fail_status"], faults["status"]) == (3, 500, None)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
            assert await process.stdout.read() == b""
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
