"""The Kubernetes manifests (deploy/kubernetes/): valid for the Kubernetes API, and consistent with smg.

Every manifest is validated offline against the Kubernetes JSON schemas of one pinned version
(kubernetes-validate, strict: unknown fields are errors). The ServiceMonitor is a Prometheus Operator CRD,
which kubernetes-validate has no schema for: it is validated against the vendored subset of the CRD's
schema beside this file. The container's command line and variables are parsed with smg's own settings
parser, so a renamed flag or variable fails here; probes, ports, the drain arithmetic and the sizing are
checked against the settings that parse yields.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from smg.api.health import router as health_router
from smg.mcp.registry.yaml_config import static_servers
from smg.settings import Settings, parse_settings
from smg.settings.groups import MCP_SERVERS_KEY

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30"
SERVICEMONITOR_SCHEMA = Path(__file__).with_name("servicemonitor_v1.schema.json")
EXAMPLE_SECRET = "secret.example.yaml"

# What terminationGracePeriodSeconds must leave beyond the preStop sleep and smg's drain: closing MCP
# sessions, stopping stdio servers and the process exit (docs/kubernetes.md#drain).
EXIT_MARGIN_SECS = 10
# Memory per pod (docs/kubernetes.md#sizing): the supervisor plus each serving process, peak RSS.
SUPERVISOR_MIB = 110
SERVING_PROCESS_MIB = 120


def _load_all(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert all(isinstance(d, dict) for d in docs), path
    return docs


def _kustomization() -> dict[str, Any]:
    doc = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def _generated_configmaps() -> list[dict[str, Any]]:
    """The ConfigMaps of the kustomization's configMapGenerator, as kustomize renders them (less the
    content-hash suffix of the name, which kustomize also writes into every reference)."""
    maps = []
    for generator in _kustomization().get("configMapGenerator", []):
        data = {}
        for entry in generator["files"]:
            key, _, source = entry.rpartition("=")
            data[key or source] = (MANIFESTS / source).read_text(encoding="utf-8")
        meta = {"name": generator["name"], "namespace": _kustomization()["namespace"]}
        maps.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})
    return maps


def _resources() -> list[dict[str, Any]]:
    """Every object `kubectl apply -k deploy/kubernetes` creates."""
    docs = [d for r in _kustomization()["resources"] for d in _load_all(MANIFESTS / r)]
    return docs + _generated_configmaps()


def _one(kind: str) -> dict[str, Any]:
    (doc,) = [d for d in _resources() if d["kind"] == kind]
    return doc


def _container() -> dict[str, Any]:
    (container,) = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def _example_secret() -> dict[str, Any]:
    (secret,) = _load_all(MANIFESTS / EXAMPLE_SECRET)
    return secret


def _container_env() -> dict[str, str]:
    """The container's variables, each Secret reference resolved from the example Secret."""
    secret = _example_secret()
    env = {}
    for var in _container()["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"], var
            env[var["name"]] = secret["stringData"][ref["key"]]
    return env


def _settings(tmp_path: Path) -> Settings:
    """The settings the container runs with: its arguments and variables through smg's own parser, the
    config file being the generated ConfigMap's content at the path the arguments name."""
    args = list(_container()["args"])
    assert args[0] == "launch"
    config_path = args[args.index("--config") + 1]
    (mount,) = [m for m in _container()["volumeMounts"] if m["name"] == "config"]
    (volume,) = [
        v for v in _one("Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"
    ]
    (config_map,) = [
        m for m in _generated_configmaps() if m["metadata"]["name"] == volume["configMap"]["name"]
    ]
    key = Path(config_path).relative_to(mount["mountPath"]).as_posix()
    local = tmp_path / key
    local.write_text(config_map["data"][key], encoding="utf-8")
    args[args.index("--config") + 1] = str(local)
    return parse_settings(args[1:], env=_container_env())


def _port(name_or_number: str | int) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    (port,) = [p["containerPort"] for p in _container()["ports"] if p["name"] == name_or_number]
    assert isinstance(port, int)
    return port


def _cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def _mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "K": 1e3 / 2**20, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity.removesuffix(suffix)) * factor
    return float(quantity) / 2**20


def _dockerfile_user() -> tuple[int, str]:
    """The UID the image runs as and its XDG_STATE_HOME."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    uid = re.search(r"useradd\b.*--uid (\d+)", text)
    state = re.search(r"XDG_STATE_HOME=(\S+)", text)
    assert uid and state
    return int(uid.group(1)), state.group(1)


# --- schemas --------------------------------------------------------------------------------------


def test_every_manifest_is_valid_for_the_pinned_kubernetes_version() -> None:
    checked = []
    for doc in [*_resources(), _example_secret()]:
        if doc["kind"] == "ServiceMonitor":
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:  # the message names the field and the schema
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {exc}")
        checked.append(doc["kind"])
    assert sorted(checked) == sorted(
        ["Namespace", "Deployment", "Service", "PodDisruptionBudget", "ConfigMap", "Secret"]
    )


def test_the_servicemonitor_is_valid_for_the_prometheus_operator_crd() -> None:
    schema = json.loads(SERVICEMONITOR_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(_one("ServiceMonitor"), schema)
    with pytest.raises(jsonschema.ValidationError):  # the schema refuses what the CRD would not store
        jsonschema.validate({**_one("ServiceMonitor"), "spec": {"selector": {}, "endpoint": []}}, schema)


def test_the_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    listed = set(_kustomization()["resources"])
    generated = {f.rpartition("=")[2] for g in _kustomization()["configMapGenerator"] for f in g["files"]}
    on_disk = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk == listed | generated | {EXAMPLE_SECRET}
    assert EXAMPLE_SECRET not in listed
    assert not [d for d in _resources() if d["kind"] == "Secret"]
    # The image the compose stack builds, renamed in one place.
    (image,) = _kustomization()["images"]
    assert image["name"] == _container()["image"]
    compose = yaml.safe_load((ROOT / "compose/docker-compose.yml").read_text(encoding="utf-8"))
    assert f"{image['newName']}:{image['newTag']}" == compose["x-smg-image"]["image"]


def test_kubectl_kustomize_renders_the_set_with_the_config_map_referenced() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    proc = subprocess.run(
        [kubectl, "kustomize", str(MANIFESTS)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    rendered = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert sorted(d["kind"] for d in rendered) == sorted(d["kind"] for d in _resources())
    assert {d["metadata"].get("namespace", "inference") for d in rendered} == {"inference"}
    (config_map,) = [d for d in rendered if d["kind"] == "ConfigMap"]
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
    (volume,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"] != "smg-config"  # hashed name
    for doc in rendered:
        if doc["kind"] != "ServiceMonitor":
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


# --- agreement with smg ---------------------------------------------------------------------------


def test_the_container_command_line_and_variables_parse_with_smg(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    secret = _example_secret()["stringData"]
    assert settings.server.database_url == secret["database-url"]
    assert settings.server.database_url.startswith("postgresql://")
    assert settings.auth.api_keys == (secret["api-key"],)
    assert settings.auth.admin_api_keys == (secret["admin-api-key"],)
    assert settings.server.host == "0.0.0.0" and settings.server.metrics_host == "0.0.0.0"
    assert len(settings.workers.entries) == 2
    specs = static_servers(settings.mcp.config_path, settings.mcp.servers_file, key=MCP_SERVERS_KEY)
    assert [s.name for s in specs] == ["search"]


def test_secrets_reach_the_container_by_reference_only() -> None:
    env = _container()["env"]
    by_name = {var["name"]: var for var in env}
    for name in ("SMG_DATABASE_URL", "SMG_API_KEY", "SMG_ADMIN_API_KEY"):
        assert "value" not in by_name[name], name
        assert by_name[name]["valueFrom"]["secretKeyRef"]["name"] == "smg"
    referenced = {v["valueFrom"]["secretKeyRef"]["key"] for v in env if "valueFrom" in v}
    example = _example_secret()["stringData"]
    assert referenced == set(example)
    assert all("REPLACE_ME" in value for value in example.values())
    assert not any("postgresql://" in str(a) or "key" in str(a).lower() for a in _container()["args"])


def test_probes_ask_smg_routes_on_the_gateway_port(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    routes = {route.path for route in health_router.routes}
    container = _container()
    probes = {
        name: container[name]["httpGet"] for name in ("livenessProbe", "readinessProbe", "startupProbe")
    }
    assert probes["livenessProbe"]["path"] == "/liveness"
    assert probes["readinessProbe"]["path"] == "/readiness"
    for name, probe in probes.items():
        assert probe["path"] in routes, name
        assert _port(probe["port"]) == settings.server.port, name


def test_service_and_servicemonitor_reach_the_gateway_and_metrics_ports(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    pod_labels = _one("Deployment")["spec"]["template"]["metadata"]["labels"]
    service = _one("Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert _port(ports["http"]["targetPort"]) == settings.server.port
    assert _port(ports["metrics"]["targetPort"]) == settings.server.prometheus_port
    monitor = _one("ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [_kustomization()["namespace"]]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"


def test_two_replicas_and_a_disruption_budget_keeping_one() -> None:
    deployment = _one("Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pdb = _one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_termination_grace_period_covers_the_prestop_sleep_the_drain_and_a_margin(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    pod = _one("Deployment")["spec"]["template"]["spec"]
    command = _container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    assert pre_stop >= 1  # long enough for the endpoints controller to drop the pod before SIGTERM
    drain = math.ceil(settings.server.shutdown_grace_period_secs)
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain + EXIT_MARGIN_SECS


def test_processes_follow_the_cpu_request_and_memory_covers_them(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    resources = _container()["resources"]
    cpu = _cores(resources["requests"]["cpu"])
    assert cpu == int(cpu) and settings.server.processes == int(cpu)
    assert resources["limits"]["cpu"] == resources["requests"]["cpu"]
    memory = _mebibytes(resources["requests"]["memory"])
    budget = SUPERVISOR_MIB + settings.server.processes * SERVING_PROCESS_MIB
    assert memory >= budget
    # A request body is held while forwarded: one largest body per process fits in the headroom.
    assert settings.server.processes * settings.server.max_payload_size <= (memory - budget) * 2**20
    assert resources["limits"]["memory"] == resources["requests"]["memory"]


def test_the_pod_runs_as_the_image_user_on_a_read_only_root_with_writable_state_and_tmp(
    tmp_path: Path,
) -> None:
    uid, state_home = _dockerfile_user()
    pod = _one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == uid
    container = _container()["securityContext"]
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    writable = {m["mountPath"] for m in _container()["volumeMounts"] if m["name"] in empty_dirs}
    # Where smg writes: the SQLite registry under $XDG_STATE_HOME when no --database-url is given, and the
    # supervisor's multiprocess metrics directory under the temporary directory.
    settings = parse_settings([], env={"XDG_STATE_HOME": state_home})
    assert settings.mcp.registry_path is not None
    assert any(Path(settings.mcp.registry_path).is_relative_to(w) for w in writable)
    assert "/tmp" in writable
    assert "TMPDIR" not in _container_env()
