"""`python -m bench.scaling`: what `--processes` buys on two cores, against the Rust SMG on the same cores.

One fast worker, smg with ``--processes 1``, smg with ``--processes 2`` and the Rust SMG (its own venv,
installed from PyPI when missing) run unpinned: every process, wrk included, shares the machine's cores,
so each gateway may use both. Each round loads every gateway in turn (the order alternates between
rounds) with wrk at c=64 on the non-streaming chat request, only one gateway at a time, and records its
requests per second and its CPU per request (the CPU time of its process tree over the run divided by
the requests completed). Prints each figure per round, the medians, and the scaling efficiency of two
processes: (req/s with 2) / (2 x req/s with 1).

The Rust SMG is left out, with the reason, when it cannot be installed (``--no-smg``, or no network).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from bench.load import ensure_wrk, run_wrk
from bench.procs import Proc, cpu_seconds, start, stop_proc
from bench.targets import ensure_venv, start_smg, start_smg_real

BENCH = Path(__file__).resolve().parent
CHAT = "/v1/chat/completions"
CONNS = 64


def _load(wrk: str, proc: Proc, seconds: float) -> tuple[float, float]:
    """(requests per second, CPU us per request) of one wrk run against ``proc``."""
    before = cpu_seconds(proc.pid)
    result = run_wrk(wrk, proc.url + CHAT, script=BENCH / "chat.lua", conns=CONNS, seconds=seconds, core=None)
    if result.errors or not result.requests:
        raise RuntimeError(f"{proc.name}: {result.errors} errors in {result.requests} requests")
    return result.rps, (cpu_seconds(proc.pid) - before) / result.requests * 1e6


def run(rounds: int, seconds: float, *, smg_venv: Path | None) -> dict[str, dict[str, list[float]]]:
    """Per gateway: ``rps`` and ``cpu_us`` lists, one figure per round."""
    wrk, why = ensure_wrk()
    if wrk is None:
        raise SystemExit(f"bench.scaling: {why}")
    logs = Path(tempfile.mkdtemp(prefix="smg-scaling-"))
    worker = start(
        "worker",
        [sys.executable, "-m", "bench.fastworker", "--host", "127.0.0.1", "--port", "0"],
        core=None,
        ready_prefix="FASTWORKER_READY",
        log=logs / "worker",
    )
    procs: dict[str, Proc] = {}
    try:
        for n in (1, 2):
            procs[f"smg-p{n}"] = start_smg(worker.url, core=None, log=logs / f"smg-p{n}", processes=n)
        if smg_venv is not None:
            bindir, why = ensure_venv(smg_venv, "smg", install=True, timeout=300)
            if bindir is None:
                print(f"SMG left out: {why}", flush=True)
            else:
                procs["SMG"] = start_smg_real(bindir, worker.url, core=None, log=logs / "SMG")
        for proc in procs.values():  # warm-up
            _load(wrk, proc, 1)
        figures: dict[str, dict[str, list[float]]] = {n: {"rps": [], "cpu_us": []} for n in procs}
        for r in range(rounds):
            order = list(procs) if r % 2 == 0 else list(reversed(procs))
            for name in order:
                rps, cpu = _load(wrk, procs[name], seconds)
                figures[name]["rps"].append(rps)
                figures[name]["cpu_us"].append(cpu)
            print(
                r,
                {n: (round(f["rps"][-1]), round(f["cpu_us"][-1], 1)) for n, f in figures.items()},
                flush=True,
            )
        return figures
    finally:
        for proc in procs.values():
            stop_proc(proc)
        stop_proc(worker)


def report(figures: dict[str, dict[str, list[float]]]) -> str:
    lines = [f"c={CONNS}, non-streaming chat, nothing pinned"]
    for name, f in figures.items():
        lines.append(
            f"{name:7s} req/s median {statistics.median(f['rps']):7.0f} "
            f"(all {[round(v) for v in f['rps']]}); "
            f"CPU/request median {statistics.median(f['cpu_us']):6.1f} us"
        )
    if "smg-p1" in figures and "smg-p2" in figures:
        one, two = figures["smg-p1"]["rps"], figures["smg-p2"]["rps"]
        eff = [b / (2 * a) for a, b in zip(one, two, strict=True)]
        lines.append(
            f"scaling efficiency of 2 processes: median {statistics.median(eff):.2f} "
            f"(per round {[round(e, 2) for e in eff]})"
        )
    if "SMG" in figures and "smg-p2" in figures:
        ratio = [b / a for a, b in zip(figures["SMG"]["rps"], figures["smg-p2"]["rps"], strict=True)]
        lines.append(
            f"smg-p2 / SMG req/s: median {statistics.median(ratio):.2f} "
            f"(per round {[round(x, 2) for x in ratio]})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds (default 6)")
    parser.add_argument("--seconds", type=float, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--smg-venv", type=Path, default=BENCH.parent / ".bench" / "venvs" / "smg")
    parser.add_argument("--no-smg", action="store_true", help="leave the Rust SMG out")
    a = parser.parse_args(argv)
    print(report(run(a.rounds, a.seconds, smg_venv=None if a.no_smg else a.smg_venv)))


if __name__ == "__main__":
    main()
