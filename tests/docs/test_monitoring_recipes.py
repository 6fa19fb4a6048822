"""Every PromQL recipe in docs/monitoring.md returns data from a real Prometheus scraping a real gateway.

Real processes on 127.0.0.1: a healthy worker, a failing worker (503 on every chat request, the only one
serving ``bad-model``), a worker whose health check fails (``sick-model``), a slow worker (``held-model``,
2 s per answer), the calc MCP server over streamable HTTP, the gateway (admission 2 permits, no queue;
breaker threshold 2; one retry) and ``prometheus`` scraping the gateway's metrics listener every second. A
background workload keeps every kind of event flowing (successes, 5xx, breaker opening, 429 rejections,
tool loops ok and failing, streams with and without ``include_usage``) and a second one keeps a request to
the slow worker in flight, while each recipe is polled through ``/api/v1/query`` until it returns a
non-empty result.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from smg.cli.launch import READY_PREFIX as GATEWAY_READY
from smg.testing.processes import spawn, wait_for_line
from tests._procs import Procs, poll

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MCP_READY = "MCP_SERVER_READY"
MIN_TRAFFIC_SECS = 12.0
_FENCE = re.compile(r"^```promql\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Grafana-style macros, should a recipe ever use one: Prometheus needs a concrete range.
_MACROS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "5m"}

TOOL_OK = 'CALL calc__evaluate {"expression": "2+2"}'
TOOL_ERROR = 'CALL calc__evaluate {"expression": "x + 1"}'  # a name: calc refuses it (outcome="error")
MCP_TOOLS = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
APPROVED_TOOLS = [{"type": "mcp", "server_label": "calc", "require_approval": "always"}]


# SMG's guide writes its load distribution query with a plain `sum`, which drops the `job` and `instance`
# labels every scraped series carries, so `ignoring(worker)` matches nothing: it never returns data. The
# doc gives it with `sum without (worker)`; the test shows the original form empty on the live data.
SEED_LOAD_DISTRIBUTION = (
    "smg_worker_requests_active / ignoring(worker) group_left sum(smg_worker_requests_active)"
)
LOAD_DISTRIBUTION = (
    "smg_worker_requests_active / ignoring(worker) group_left"
    " sum without (worker) (smg_worker_requests_active)"
)
# Every query of SMG's monitoring guide (Grafana panels, useful queries, verification), as written there
# (its two-line queries joined with one space), but for the load distribution above. Its alert
# expressions are promtool-tested in compose/.
SEED_RECIPES = (
    "sum(rate(smg_http_requests_total[5m]))",
    "histogram_quantile(0.99, rate(smg_http_request_duration_seconds_bucket[5m]))",
    'sum(rate(smg_http_responses_total{status_code=~"5.."}[5m])) / sum(rate(smg_http_responses_total[5m]))',
    "histogram_quantile(0.5, rate(smg_router_ttft_seconds_bucket[5m]))",
    "sum(rate(smg_router_tokens_total[5m]))",
    "sum(smg_worker_health)",
    "sum by (path) (rate(smg_http_requests_total[5m]))",
    'sum(rate(smg_http_responses_total{status_code="200"}[5m])) / sum(rate(smg_http_responses_total[5m]))',
    "histogram_quantile(0.50, rate(smg_http_request_duration_seconds_bucket[5m]))",
    "histogram_quantile(0.95, rate(smg_http_request_duration_seconds_bucket[5m]))",
    "histogram_quantile(0.99, rate(smg_http_request_duration_seconds_bucket[5m]))",
    "sum by (model) (rate(smg_router_tokens_total[5m]))",
    "histogram_quantile(0.5, sum by (model, le) (rate(smg_router_ttft_seconds_bucket[5m])))",
    'sum(rate(smg_router_tokens_total{type="output"}[5m]))'
    ' / sum(rate(smg_router_tokens_total{type="input"}[5m]))',
    LOAD_DISTRIBUTION,
    "count(smg_worker_health == 0)",
    "count by (worker) (smg_worker_cb_state == 1)",
    'sum(rate(smg_mcp_tool_calls_total{result="success"}[5m])) / sum(rate(smg_mcp_tool_calls_total[5m]))',
    "topk(10, sum by (tool_name) (rate(smg_mcp_tool_calls_total[5m])))",
    "topk(5, histogram_quantile(0.95,"
    " sum by (tool_name, le) (rate(smg_mcp_tool_duration_seconds_bucket[5m]))))",
    "smg_http_requests_total",
)


def doc_recipes() -> list[str]:
    """Every PromQL query in docs/monitoring.md: each non-comment line of its ```promql blocks."""
    text = (ROOT / "docs/monitoring.md").read_text(encoding="utf-8")
    queries = []
    for block in _FENCE.findall(text):
        for line in block.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            for macro, value in _MACROS.items():
                line = line.replace(macro, value)
            assert "$" not in line, f"unreplaced variable in recipe: {line}"
            queries.append(line)
    return queries


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _chat(client: httpx.Client, content: str, *, model: str = "mock-model", **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    return client.post("/v1/chat/completions", json=body)


def _admitted(send: Any) -> httpx.Response:
    """Send until admission lets the request in (the background workload may hold the single permit)."""
    deadline = time.monotonic() + 10
    while True:
        resp: httpx.Response = send()
        if resp.status_code != 429 or time.monotonic() > deadline:
            return resp
        time.sleep(0.02)


def _responses(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return _admitted(lambda: client.post("/v1/responses", json=body))


class Workload:
    """Every kind of traffic the recipes need, once per round; counts the statuses it saw."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.statuses: dict[str, set[int]] = {}
        self.stop = threading.Event()
        self.rounds = 0

    def _note(self, kind: str, resp: httpx.Response) -> httpx.Response:
        self.statuses.setdefault(kind, set()).add(resp.status_code)
        return resp

    def burst(self, client: httpx.Client, n: int = 8) -> None:
        """Concurrent streams against one admission permit and no queue: some are rejected with 429."""

        def one(_: int) -> int:
            resp = _chat(client, "a b c d e f g h", stream=True)
            return self._note("burst", resp).status_code

        with ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(one, range(n)))

    def approvals(self, client: httpx.Client) -> None:
        """A Responses request plain, and two held for approval: one approved, one denied."""
        self._note("responses", _responses(client, {"model": "mock-model", "input": "hello there"}))
        ask = {"model": "mock-model", "input": TOOL_OK, "tools": APPROVED_TOOLS}
        for approve in (True, False):
            held = self._note("approval", _responses(client, ask))
            if held.status_code != 200:
                continue
            answer = {"type": "mcp_approval_response", "approve": approve}
            answer["approval_request_id"] = held.json()["output"][-1]["id"]
            follow = {"model": "mock-model", "previous_response_id": held.json()["id"], "input": [answer]}
            self._note("approval", _responses(client, follow | {"tools": APPROVED_TOOLS}))

    def round(self, client: httpx.Client) -> None:
        self.approvals(client)
        self._note("success", _chat(client, "hello there"))
        self._note("stream_usage", _chat(client, "one two three four", stream=True,
                                         stream_options={"include_usage": True}))  # fmt: skip
        self._note("stream_plain", _chat(client, "five six seven eight", stream=True))
        self._note("tool_ok", _chat(client, TOOL_OK, tools=MCP_TOOLS))
        self._note("tool_error", _chat(client, TOOL_ERROR, tools=MCP_TOOLS))
        self._note("bad_model", _chat(client, "fail please", model="bad-model"))
        self.burst(client)
        self.rounds += 1

    def hold(self) -> None:
        """Requests to the slow worker, back to back: one of them is nearly always in flight, so the
        load distribution (a share of the requests in flight) has a value at every scrape."""
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self.stop.is_set():
                if self._note("held", _chat(client, "hold on", model="held-model")).status_code == 429:
                    self.stop.wait(0.05)

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self.stop.is_set():
                self.round(client)
                self.stop.wait(0.2)


def _has_data(payload: dict[str, Any]) -> bool:
    """A non-empty instant vector with at least one number (not NaN: a rate over fewer than two samples,
    or a histogram with no observations in the window, would give NaN)."""
    return any(not math.isnan(float(sample["value"][1])) for sample in payload["data"]["result"])


def _query(client: httpx.Client, base: str, promql: str) -> dict[str, Any]:
    resp = client.get(f"{base}/api/v1/query", params={"query": promql})
    payload: dict[str, Any] = resp.json()
    assert resp.status_code == 200 and payload["status"] == "success", (promql, resp.text)
    return payload


def test_the_monitoring_doc_carries_every_query_of_smgs_monitoring_guide_verbatim() -> None:
    missing = [q for q in SEED_RECIPES if q not in doc_recipes()]
    assert not missing, missing


def test_every_monitoring_doc_recipe_returns_data_from_a_real_prometheus(
    procs: Procs, tmp_path: Path
) -> None:
    recipes = doc_recipes()
    # The extractor must not silently miss or invent recipes: 21 when this test was written, all on smg_.
    assert len(recipes) >= 21 and all("smg_" in r for r in recipes), recipes
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is not installed"

    _, healthy = procs.worker("--chunk-delay-ms", "10")
    _, failing = procs.worker("--model", "bad-model", "--fail-status", "503")
    _, sick = procs.worker("--model", "sick-model", "--health-status", "503")
    _, held = procs.worker("--model", "held-model", "--delay-ms", "2000")
    mcp = spawn([sys.executable, "-m", "mcp_servers.calc", "--transport", "streamable-http", "--port", "0"])
    procs.started.append(mcp)
    mcp_url = wait_for_line(mcp, MCP_READY)

    gateway_argv = [sys.executable, "-m", "smg", "launch", "--host", "127.0.0.1", "--port", "0"]
    gateway_argv += ["--prometheus-host", "127.0.0.1", "--prometheus-port", "0"]
    gateway_argv += ["--worker-urls", healthy, failing, sick, held, "--policy", "round_robin"]
    gateway_argv += ["--cb-failure-threshold", "2", "--cb-timeout-duration-secs", "600"]
    gateway_argv += ["--retry-max-retries", "1", "--retry-initial-backoff-ms", "1"]
    gateway_argv += ["--health-check-interval-secs", "1", "--health-failure-threshold", "1"]
    gateway_argv += ["--max-concurrent-requests", "2", "--queue-size", "0"]
    gateway_argv += ["--mcp-registry", str(tmp_path / "mcp.db")]
    gateway = spawn(gateway_argv)
    procs.started.append(gateway)
    ready = wait_for_line(gateway, GATEWAY_READY)
    url = ready.split()[0]
    metrics = urlsplit(ready.split("(metrics ", 1)[1].rstrip(")"))

    port = _free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "smg", "static_configs": [{"targets": [metrics.netloc]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prom_argv = [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}"]
    prom_argv += [f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"]
    prom = spawn(prom_argv, stderr=subprocess.DEVNULL)
    procs.started.append(prom)  # stopped by PID (SIGTERM, bounded wait) by the fixture
    base = f"http://127.0.0.1:{port}"

    workload = Workload(url)
    with httpx.Client(base_url=url, timeout=30) as client:
        server = {"name": "calc", "transport": "streamable-http", "url": mcp_url}
        assert client.post("/mcp/servers", json=server).status_code == 201
        # A registry error: removing an unknown server (remove, result="mcp_server_not_found"). A duplicate
        # POST would not do: validation refuses it with 409 before the registry is touched.
        assert client.delete("/mcp/servers/no-such-server").status_code == 404

        loop = _admitted(lambda: _chat(client, TOOL_OK, tools=MCP_TOOLS))
        assert loop.status_code == 200, loop.text
        assert "4" in loop.json()["choices"][0]["message"]["content"]
        # The failing worker: 503, retried once, then its breaker opens (threshold 2).
        for _ in range(2):
            assert _admitted(lambda: _chat(client, "x", model="bad-model")).status_code >= 500
        workload.round(client)
        assert 429 in workload.statuses["burst"], workload.statuses
        assert workload.statuses["bad_model"] <= set(range(500, 600)), workload.statuses

    traffic = threading.Thread(target=workload.run, daemon=True)
    holder = threading.Thread(target=workload.hold, daemon=True)
    traffic.start()
    holder.start()
    started = time.monotonic()
    found: dict[str, float] = {}
    try:
        with httpx.Client(timeout=10) as prom_client:

            def scraped() -> bool:
                try:
                    return bool(_query(prom_client, base, "up")["data"]["result"])
                except httpx.HTTPError:
                    return False

            poll(scraped, timeout=30, interval=0.2)
            deadline = time.monotonic() + 60
            pending = list(recipes)
            while pending and time.monotonic() < deadline:
                for recipe in list(pending):
                    if _has_data(_query(prom_client, base, recipe)):
                        found[recipe] = round(time.monotonic() - started, 1)
                        pending.remove(recipe)
                if pending:
                    time.sleep(0.5)
            # Traffic for at least MIN_TRAFFIC_SECS, so every rate spans many scrapes; then every recipe
            # once more, on the latest data.
            time.sleep(max(0.0, MIN_TRAFFIC_SECS - (time.monotonic() - started)))
            final = {r: _has_data(_query(prom_client, base, r)) for r in recipes if r in found}
            open_breakers = _query(prom_client, base, "count(smg_worker_cb_state == 1)")["data"]["result"]
            seed_load = _query(prom_client, base, SEED_LOAD_DISTRIBUTION)["data"]["result"]
    finally:
        workload.stop.set()
        traffic.join(timeout=30)
        holder.join(timeout=30)

    summary = json.dumps(found, indent=1)
    assert not pending, f"recipes without data after 60 s: {pending}\nfound: {summary}"
    assert all(final.values()), f"recipes that lost their data: {[r for r, ok in final.items() if not ok]}"
    assert float(open_breakers[0]["value"][1]) == 1.0
    assert seed_load == [], "the guide's own load distribution query matched after all: update the doc"
    assert workload.statuses["held"] >= {200}, workload.statuses
    assert workload.statuses["approval"] == workload.statuses["responses"] == {200}, workload.statuses
    assert workload.rounds >= 2
    print(f"recipes with data (seconds after traffic start), {workload.rounds} rounds:\n{summary}")
