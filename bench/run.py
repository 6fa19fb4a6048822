"""`python -m bench`: the gateway benchmark (docs/benchmarks.md). Writes a Markdown report and its JSON."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import hooks, report, toolloop
from bench.fastworker import READY_PREFIX
from bench.load import (
    CHAT_LUA,
    RESPONSES_LUA,
    RESPONSES_NOSTORE_LUA,
    RESPONSES_STREAM_LUA,
    STREAM_LUA,
    ensure_wrk,
    run_wrk,
    ttfb_ms,
)
from bench.otlpsink import OtlpSink
from bench.procs import Proc, RssSampler, cpu_seconds, rss_kib, start, stop_proc
from bench.render import update_doc
from bench.targets import (
    check_responses,
    ensure_venv,
    start_litellm,
    start_smg,
    start_smg_real,
    venv_version,
)

REPO = Path(__file__).resolve().parent.parent
OURS = ("direct", "smg", "smg-trace")  # a failure of these fails the run; of the others, it is noted
CHAT, RESPONSES = "/v1/chat/completions", "/v1/responses"
# name: (path, wrk script, connections), in the order a round runs them. The Responses scenarios run on
# `smg` alone (no other target serves the Responses API in front of a chat worker), each right after the
# chat scenario it is compared with, so both see the same state of the machine.
SCENARIOS = {
    "c1": (CHAT, CHAT_LUA, 1),
    "c16": (CHAT, CHAT_LUA, 16),
    "resp16": (RESPONSES, RESPONSES_LUA, 16),
    "resp_nostore16": (RESPONSES, RESPONSES_NOSTORE_LUA, 16),
    "c64": (CHAT, CHAT_LUA, 64),
    "stream16": (CHAT, STREAM_LUA, 16),
    "resp_stream16": (RESPONSES, RESPONSES_STREAM_LUA, 16),
}
SMG_ONLY = ("resp16", "resp_nostore16", "resp_stream16")


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--smoke", action="store_true", help="one short round of everything (< 60 s)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; smoke 1)")
    p.add_argument("--seconds", type=float, default=None, help="seconds per wrk run (default 5; smoke 1)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="report directory")
    p.add_argument("--cache", type=Path, default=REPO / ".bench", help="where venvs and logs live")
    p.add_argument("--smg-venv", type=Path, default=os.environ.get("SMG_BENCH_SMG_VENV"), help="venv of SMG")
    p.add_argument("--no-smg-install", action="store_true", help="never pip install SMG; skip it if missing")
    p.add_argument(
        "--litellm-venv", type=Path, default=os.environ.get("SMG_BENCH_LITELLM_VENV"), help="venv of LiteLLM"
    )
    p.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out")
    p.add_argument("--no-toolloop", action="store_true", help="leave the MCP tool-loop figures out")
    p.add_argument("--update-doc", action="store_true", help="copy the report into docs/benchmarks.md")
    return p.parse_args(argv)


def _cores() -> tuple[int | None, int | None]:
    """(load core, gateway core): 0 and 1 with two or more cores and taskset, else no pinning."""
    try:
        return (0, 1) if len(os.sched_getaffinity(0)) >= 2 and shutil.which("taskset") else (None, None)
    except AttributeError:
        return None, None


@contextlib.contextmanager
def _worker(core: int | None, logdir: Path) -> Iterator[Proc]:
    args = [sys.executable, "-m", "bench.fastworker", "--host", "127.0.0.1", "--port", "0"]
    proc = start("worker", args, core=core, ready_prefix=READY_PREFIX, log=logdir / "worker.log")
    try:
        yield proc
    finally:
        stop_proc(proc)


def _start_targets(
    a: argparse.Namespace, worker: str, gw_core: int | None, logdir: Path, sink: OtlpSink, res: dict[str, Any]
) -> dict[str, Proc | None]:
    """Start every gateway; a target that cannot run is recorded as skipped (ours: as an error)."""
    procs: dict[str, Proc | None] = {"direct": None}
    res["targets"]["direct"] = {"status": "ok", "version": "fast worker"}
    import smg

    for name, endpoint in (("smg", None), ("smg-trace", sink.endpoint)):
        try:
            procs[name] = start_smg(worker, core=gw_core, log=logdir / f"{name}.log", trace_endpoint=endpoint)
            res["targets"][name] = {"status": "ok", "version": smg.__version__}
        except (TimeoutError, RuntimeError, OSError) as exc:
            res["targets"][name] = {"status": "error", "reason": str(exc)}
            res["errors"].append(f"{name} did not start: {exc}")
    venv_path = a.smg_venv or a.cache / "venvs" / "smg"
    bindir, why = ensure_venv(venv_path, "smg", install=not a.no_smg_install, timeout=45 if a.smoke else 300)
    if bindir is None:
        res["targets"]["SMG"] = {"status": "skipped", "reason": why}
    else:
        try:
            procs["SMG"] = start_smg_real(bindir, worker, core=gw_core, log=logdir / "SMG.log")
            res["targets"]["SMG"] = {"status": "ok", "version": venv_version(bindir, "smg")}
        except (TimeoutError, RuntimeError, OSError) as exc:
            res["targets"]["SMG"] = {"status": "skipped", "reason": f"did not start: {exc}"}
    if a.no_litellm or a.smoke:
        res["targets"]["litellm"] = {"status": "skipped", "reason": "left out (--no-litellm or --smoke)"}
    else:
        lbin, why = ensure_venv(
            a.litellm_venv or a.cache / "venvs" / "litellm", "litellm", install=False, timeout=0
        )
        if lbin is None:
            res["targets"]["litellm"] = {"status": "skipped", "reason": f"not installed: {why}"}
        else:
            try:
                procs["litellm"] = start_litellm(
                    lbin, worker, core=gw_core, log=logdir / "litellm.log", workdir=logdir
                )
                res["targets"]["litellm"] = {"status": "ok", "version": venv_version(lbin, "litellm")}
            except (TimeoutError, RuntimeError, OSError) as exc:
                res["targets"]["litellm"] = {"status": "skipped", "reason": f"did not start: {exc}"}
    return procs


def _endpoint(proc: Proc | None, worker: Proc, path: str = CHAT) -> tuple[str, dict[str, str], int]:
    """(URL of ``path``, extra headers, PID to account CPU and memory to) of a target; `direct` is the
    worker."""
    if proc is None:
        return worker.url + path, {}, worker.pid
    return proc.url + path, proc.extra, proc.pid


def _scenarios(name: str, res: dict[str, Any]) -> list[str]:
    """The scenarios target ``name`` runs: the Responses ones on `smg` only, once it answered them."""
    return [s for s in SCENARIOS if s not in SMG_ONLY or (name == "smg" and res.get("responses_ok"))]


def _measure(
    a: argparse.Namespace,
    wrk: str,
    worker: Proc,
    procs: dict[str, Proc | None],
    load_core: int | None,
    res: dict[str, Any],
) -> None:
    """Interleaved rounds: per round, per scenario, every target in turn (A B C A B C ...), then TTFB."""
    names = [n for n in procs if res["targets"][n]["status"] == "ok"]
    smg = procs.get("smg")
    if smg is not None and res["targets"]["smg"]["status"] == "ok":
        try:
            check_responses(smg.url)
            res["responses_ok"] = True
        except RuntimeError as exc:
            res["errors"].append(f"smg Responses API: {exc}")
    for name in names:
        _, _, pid = _endpoint(procs[name], worker)
        t = res["targets"][name]
        mine = _scenarios(name, res)
        t.update(runs={s: [] for s in mine}, cpu_us={s: [] for s in mine}, ttfb_ms=[])
        if procs[name] is not None:
            t["rss_idle_mib"] = rss_kib(pid) / 1024
            t["rss_peak_mib"] = 0.0
        if not a.smoke:  # warm up connection pools and lazily built paths, unmeasured
            for scenario in ("c16", "stream16", "resp16", "resp_stream16"):
                if scenario in mine:
                    path, script, _ = SCENARIOS[scenario]
                    url, headers, _ = _endpoint(procs[name], worker, path)
                    run_wrk(wrk, url, script=script, conns=16, seconds=1, core=load_core, headers=headers)
    for _ in range(a.rounds):
        for scenario, (path, script, conns) in SCENARIOS.items():
            for name in names:
                if scenario not in res["targets"][name]["runs"]:
                    continue
                url, headers, pid = _endpoint(procs[name], worker, path)
                t = res["targets"][name]
                cpu0 = cpu_seconds(pid)
                try:
                    with RssSampler(pid, interval=0.25) as rss:
                        r = run_wrk(
                            wrk,
                            url,
                            script=script,
                            conns=conns,
                            seconds=a.seconds,
                            core=load_core,
                            headers=headers,
                        )
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    where = "errors" if name in OURS else "notes"
                    res[where].append(f"{name} {scenario}: wrk failed: {exc}")
                    continue
                cpu = cpu_seconds(pid) - cpu0
                t["runs"][scenario].append(r.__dict__)
                if r.requests:
                    t["cpu_us"][scenario].append(cpu / r.requests * 1e6)
                if procs[name] is not None:
                    t["rss_peak_mib"] = max(
                        t["rss_peak_mib"], rss.peak_kib / 1024, rss_kib(pid, "VmHWM") / 1024
                    )
                if not r.requests:
                    res["notes"].append(f"{name} {scenario}: no request completed within the run (left out)")
                if r.errors:  # another gateway's failures are noted; ours fail the run
                    where = "errors" if name in OURS else "notes"
                    res[where].append(f"{name} {scenario}: {r.errors} failed requests")
        for name in names:
            url, headers, _pid = _endpoint(procs[name], worker)
            try:
                res["targets"][name]["ttfb_ms"].append(ttfb_ms(url, a.ttfb_n, headers=headers))
            except (OSError, RuntimeError, TimeoutError) as exc:
                where = "errors" if name in OURS else "notes"
                res[where].append(f"{name} stream TTFB: {exc!r}")


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    os.chdir(REPO)  # children run `python -m bench.fastworker`, `-m smg`, `-m mcp_servers...` from here
    a.rounds = a.rounds or (1 if a.smoke else 3)
    a.seconds = a.seconds or (1.0 if a.smoke else 5.0)
    a.ttfb_n = 30 if a.smoke else 200
    started = time.monotonic()
    load_core, gw_core = _cores()
    if load_core is not None:
        os.sched_setaffinity(0, {load_core})  # this process runs the TTFB client and the samplers
    res: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "mode": "smoke" if a.smoke else "full",
        "argv": ["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])],
        "rounds": a.rounds,
        "seconds": a.seconds,
        "pinning": {"load": load_core, "gateway": gw_core},
        "targets": {},
        "errors": [],
        "notes": [],
        "skipped": [],
    }
    wrk, why = ensure_wrk()
    res["machine"] = report.machine(wrk)
    a.cache.mkdir(parents=True, exist_ok=True)
    if a.cache.name == ".bench" and not (a.cache / ".gitignore").exists():
        (a.cache / ".gitignore").write_text("*\n")
    logdir = a.cache / "logs"  # the gateways' stderr and generated configs of the latest run
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir()
    res["logs"] = str(logdir)
    if wrk is None:
        res["skipped"].append(f"load figures: {why}")
    else:
        with _worker(load_core, logdir) as worker, OtlpSink() as sink:
            res["worker_alone"] = {
                s: run_wrk(
                    wrk,
                    worker.url + "/v1/chat/completions",
                    script=SCENARIOS[s][1],
                    conns=SCENARIOS[s][2],
                    seconds=a.seconds,
                    core=load_core,
                ).__dict__
                for s in ("c16", "stream16")
            }
            procs = _start_targets(a, worker.url, gw_core, logdir, sink, res)
            try:
                _measure(a, wrk, worker, procs, load_core, res)
            finally:
                for proc in procs.values():
                    if proc is not None:
                        stop_proc(proc)
            res["trace_spans_received"] = sink.spans
    res["tracing_off"] = hooks.tracing_off_ns(n=20_000 if a.smoke else 200_000)
    if not a.no_toolloop:
        try:
            res["toolloop"] = toolloop.measure(smoke=a.smoke, gw_core=gw_core, logdir=logdir)
        except (TimeoutError, RuntimeError, OSError) as exc:
            res["errors"].append(f"tool loop figures failed: {exc}")
    res["elapsed_s"] = round(time.monotonic() - started, 1)
    md, js = report.write(res, a.out)
    if a.update_doc:
        update_doc(md.read_text(), REPO / "docs" / "benchmarks.md")
    print(f"report: {md} ({js}); {res['elapsed_s']} s")
    for line in res["errors"]:
        print(f"error: {line}", file=sys.stderr)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
