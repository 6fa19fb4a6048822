"""The gateways under test, each started in front of one worker URL and pinned to the gateway core.

- `smg`: this project (`python -m smg`), metrics on, tracing off.
- `smg-trace`: the same with `--enable-trace`, exporting to an in-process OTLP/gRPC sink.
- `SMG`: the Rust SMG from PyPI (`pip install smg`), in its own venv (never the project's: it also
  installs an `smg` command), created on demand under the cache directory.
- `litellm`: LiteLLM's proxy, only when its venv exists (it is large; see docs/benchmarks.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import venv
from pathlib import Path

from bench.procs import Proc, free_port, start, stop_proc, wait_http

__all__ = [
    "CHAT_PROBE",
    "LITELLM_KEY",
    "check_responses",
    "ensure_venv",
    "start_litellm",
    "start_smg",
    "start_smg_real",
    "venv_version",
]

CHAT_PROBE = json.dumps({"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]}).encode()
LITELLM_KEY = "sk-bench-master-key"


def start_smg(
    worker: str, *, core: int | None, log: Path, trace_endpoint: str | None = None, processes: int = 1
) -> Proc:
    """This project's gateway; ready when it prints its `smg listening on URL` line. ``processes``: its
    ``--processes`` (serving processes under a supervisor; they inherit ``core``'s pinning, so pass
    ``core=None`` for more than one)."""
    args = [sys.executable, "-m", "smg", "--host", "127.0.0.1", "--port", "0", "--worker-urls", worker]
    args += ["--prometheus-port", "0", "--log-level", "warning", "--processes", str(processes)]
    if trace_endpoint is not None:
        args += ["--enable-trace", "--otlp-traces-endpoint", trace_endpoint]
    name = "smg-trace" if trace_endpoint else "smg"
    proc = start(name, args, core=core, ready_prefix="smg listening on", log=log)
    try:
        wait_http(proc.url + "/v1/chat/completions", body=CHAT_PROBE, timeout=20)
    except TimeoutError:
        stop_proc(proc)
        raise
    return proc


def check_responses(base_url: str) -> None:
    """``POST /v1/responses`` (no tools) answers a completed response with text, streamed and not, as the
    Responses scenarios need (wrk sees only the status). Raises RuntimeError naming what differed."""
    for stream in (False, True):
        body = json.dumps({"model": "mock-model", "input": "hi", "stream": stream}).encode()
        req = urllib.request.Request(
            base_url + "/v1/responses", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read().decode()
        except OSError as exc:  # urllib's HTTPError and URLError included
            raise RuntimeError(f"POST /v1/responses (stream={stream}) failed: {exc}") from exc
        if stream:
            events = [json.loads(ln[6:]) for ln in raw.splitlines() if ln.startswith("data: ")]
            answer = events[-1].get("response", {}) if events else {}
            ok = bool(events) and events[-1].get("type") == "response.completed"
        else:
            answer = json.loads(raw)
            ok = answer.get("status") == "completed"
        texts = [c.get("text") for i in answer.get("output", []) for c in i.get("content", [])]
        if not ok or not any(texts):
            raise RuntimeError(f"POST /v1/responses (stream={stream}) did not complete: {raw[:300]}")


def ensure_venv(path: Path, requirement: str, *, install: bool, timeout: float) -> tuple[Path | None, str]:
    """``path``/bin when it holds a venv with ``requirement``'s command; else create it (when ``install``).

    Returns (bin directory, "") or (None, why it is unavailable).
    """
    command = requirement.split("[")[0].split("=")[0].split(">")[0]
    exe = path / "bin" / command
    if exe.exists():
        return exe.parent, ""
    if not install:
        return None, f"{exe} does not exist (installing was not allowed)"
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent.parent / ".gitignore"
    if path.parent.parent.name == ".bench" and not ignore.exists():
        ignore.write_text("*\n")
    try:
        venv.create(path, with_pip=True, clear=True)
        subprocess.run(
            [
                str(path / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                requirement,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return None, f"`pip install {requirement}` took longer than {timeout:.0f}s"
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        return None, f"`pip install {requirement}` failed: {last[0][:200]}"
    except OSError as exc:
        return None, f"could not create the venv {path}: {exc}"
    if not exe.exists():
        return None, f"`pip install {requirement}` did not install {exe}"
    return exe.parent, ""


def venv_version(bindir: Path, dist: str) -> str:
    """The installed version of distribution ``dist`` in the venv of ``bindir``."""
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    argv = [str(bindir / "python"), "-I", "-c", code]  # -I: not the project's smg in the working directory
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return out.stdout.strip() or "unknown"


def start_smg_real(bindir: Path, worker: str, *, core: int | None, log: Path) -> Proc:
    """The Rust SMG with the OpenAI backend (wildcard model mode: no API key), logging at warn."""
    port, metrics = free_port(), free_port()
    args = [str(bindir / "smg"), "launch", "--backend", "openai", "--worker-urls", worker]
    args += ["--host", "127.0.0.1", "--port", str(port), "--prometheus-host", "127.0.0.1"]
    args += ["--prometheus-port", str(metrics), "--log-level", "warn"]
    proc = start("SMG", args, core=core, url=f"http://127.0.0.1:{port}", log=log)
    try:
        wait_http(proc.url + "/v1/chat/completions", body=CHAT_PROBE, timeout=60)
    except TimeoutError:
        stop_proc(proc)
        raise
    return proc


def start_litellm(bindir: Path, worker: str, *, core: int | None, log: Path, workdir: Path) -> Proc:
    """LiteLLM's proxy with one OpenAI-compatible model pointing at the worker, and a master key."""
    port = free_port()
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: mock-model\n"
        "    litellm_params:\n"
        "      model: openai/mock-model\n"
        f"      api_base: {worker}/v1\n"
        "      api_key: unused\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    args = [str(bindir / "litellm"), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    env = {"PATH": str(bindir) + ":/usr/bin:/bin", "LITELLM_LOG": "ERROR", "HOME": str(workdir)}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    proc = start("litellm", args, core=core, url=f"http://127.0.0.1:{port}", log=log, env=env)
    proc.extra["Authorization"] = f"Bearer {LITELLM_KEY}"
    try:
        wait_http(proc.url + "/v1/chat/completions", body=CHAT_PROBE, headers=proc.extra, timeout=90)
    except TimeoutError:
        stop_proc(proc)
        raise
    return proc
