"""The scripted worker's /v1/completions and /v1/embeddings, through HTTP against an in-process instance."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from smg.testing.worker import RunningWorker, WorkerConfig, running_worker

_BOUND = aiohttp.ClientTimeout(total=10)


@pytest.fixture
async def worker() -> AsyncIterator[RunningWorker]:
    async with running_worker(WorkerConfig(models=("mock-model",))) as running:
        yield running


async def _post(worker: RunningWorker, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession(timeout=_BOUND) as http,
        http.post(worker.url + path, json={"model": "mock-model", **body}) as response,
    ):
        return response.status, await response.read()


async def test_each_prompt_gets_a_choice_and_max_tokens_cuts_it(worker: RunningWorker) -> None:
    status, raw = await _post(worker, "/v1/completions", {"prompt": ["a b c", [1, 2]], "max_tokens": 2})
    assert status == 200
    done = orjson.loads(raw)
    assert [(c["index"], c["text"], c["finish_reason"]) for c in done["choices"]] == [
        (0, "echo: a", "length"),
        (1, "echo: 1", "length"),
    ]
    assert done["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}


async def test_a_completions_stream_sends_words_then_the_finish_then_usage_then_done(
    worker: RunningWorker,
) -> None:
    body = {"prompt": "hi there", "stream": True, "stream_options": {"include_usage": True}}
    status, raw = await _post(worker, "/v1/completions", body)
    assert status == 200
    events = [e.removeprefix(b"data: ") for e in raw.split(b"\n\n") if e]
    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert [c["choices"][0]["text"] for c in chunks[:-1]] == ["echo: ", "hi ", "there", ""]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


async def test_embeddings_as_base64_decode_to_the_float_vectors(worker: RunningWorker) -> None:
    _, floats = await _post(worker, "/v1/embeddings", {"input": ["x", "y"]})
    _, encoded = await _post(worker, "/v1/embeddings", {"input": ["x", "y"], "encoding_format": "base64"})
    vectors = [e["embedding"] for e in orjson.loads(floats)["data"]]
    decoded = [
        list(struct.unpack("<8f", base64.b64decode(e["embedding"]))) for e in orjson.loads(encoded)["data"]
    ]
    assert decoded == vectors
    assert len(vectors[0]) == 8
    assert vectors[0] != vectors[1]
    assert orjson.loads(floats)["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


@pytest.mark.parametrize(("path", "field"), [("/v1/completions", "prompt"), ("/v1/embeddings", "input")])
async def test_a_missing_prompt_or_unknown_model_is_refused(
    worker: RunningWorker, path: str, field: str
) -> None:
    status, raw = await _post(worker, path, {})
    assert (status, orjson.loads(raw)["error"]["param"]) == (400, field)
    status, raw = await _post(worker, path, {field: "x", "model": "nope"})
    assert (status, orjson.loads(raw)["error"]["code"]) == (404, "model_not_found")


async def test_faults_apply_to_completions_and_embeddings_and_are_counted(worker: RunningWorker) -> None:
    worker.faults.status = 503
    assert (await _post(worker, "/v1/completions", {"prompt": "x"}))[0] == 503
    assert (await _post(worker, "/v1/embeddings", {"input": "x"}))[0] == 503
    worker.faults.reset()
    worker.faults.update({"fail_every": 2})
    statuses = [(await _post(worker, "/v1/embeddings", {"input": "x"}))[0] for _ in range(2)]
    assert statuses == [200, 503]
    stats = worker.stats
    assert (stats.chat_requests, stats.completions_requests, stats.embeddings_requests) == (0, 1, 3)
