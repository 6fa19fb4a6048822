"""`python -m bench.ab A=TREE B=TREE`: did a change move the gateway's CPU per pass-through request?

A tight interleaved A/B of two source trees of smg (e.g. a `git archive` of the commit before a change and
the working tree) on one machine: one fast worker and wrk share core 0, both gateways live on core 1 and
only one is loaded at a time; each round runs the non-streaming and the streaming c=16 load against
both, in an order that alternates between rounds, so slow drifts of a shared machine hit both alike.
Prints, per tree and scenario, the median CPU per request and each round's figure, and the paired
difference with how many rounds were lower. Both gateways run on the current interpreter: the trees
must share its installed dependencies.

`--responses` adds the Responses API's pass-through (`POST /v1/responses`, no tools, one model round:
stored, with `store: false`, and streamed), each run right after its chat counterpart, and prints per
tree the paired Responses minus chat figure. With one tree (`python -m bench.ab smg=. --responses`) it
measures that tree alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from bench.load import ensure_wrk, run_wrk
from bench.procs import Proc, cpu_seconds, start, stop_proc, wait_http
from bench.targets import CHAT_PROBE, check_responses

BENCH = Path(__file__).resolve().parent
CHAT, RESPONSES = "/v1/chat/completions", "/v1/responses"
# (name, path, wrk script); a Responses scenario right after the chat one it is compared with
SCENARIOS = (("c16", CHAT, "chat.lua"), ("stream16", CHAT, "chat_stream.lua"))
WITH_RESPONSES = (
    ("c16", CHAT, "chat.lua"),
    ("resp16", RESPONSES, "responses.lua"),
    ("resp_nostore16", RESPONSES, "responses_nostore.lua"),
    ("stream16", CHAT, "chat_stream.lua"),
    ("resp_stream16", RESPONSES, "responses_stream.lua"),
)
PAIRS = (("resp16", "c16"), ("resp_nostore16", "c16"), ("resp_stream16", "stream16"))


def _gateway(name: str, tree: Path, worker: str, logs: Path) -> Proc:
    args = [sys.executable, "-m", "smg", "--host", "127.0.0.1", "--port", "0", "--worker-urls", worker]
    args += ["--prometheus-port", "0", "--log-level", "warning"]
    # `python -m smg` imports the package of its working directory first: the tree under test.
    proc = start(
        name, ["env", "-C", str(tree), *args], core=1, ready_prefix="smg listening on", log=logs / name
    )
    wait_http(proc.url + "/v1/chat/completions", body=CHAT_PROBE, timeout=20)
    return proc


def _cpu_per_request(wrk: str, proc: Proc, path: str, script: str, seconds: float) -> float:
    before = cpu_seconds(proc.pid)
    result = run_wrk(wrk, proc.url + path, script=BENCH / script, conns=16, seconds=seconds, core=0)
    if result.errors or not result.requests:
        raise RuntimeError(f"{proc.name}: {result.errors} errors in {result.requests} requests")
    return (cpu_seconds(proc.pid) - before) / result.requests * 1e6


def run(
    trees: dict[str, Path], rounds: int, seconds: float, *, responses: bool = False
) -> dict[str, dict[str, list[float]]]:
    """CPU per request (us) of each tree, per scenario, one figure per round."""
    scenarios = WITH_RESPONSES if responses else SCENARIOS
    wrk, why = ensure_wrk()
    if wrk is None:
        raise SystemExit(f"bench.ab: {why}")
    logs = Path(tempfile.mkdtemp(prefix="smg-ab-"))
    worker = start(
        "worker",
        [sys.executable, "-m", "bench.fastworker", "--host", "127.0.0.1", "--port", "0"],
        core=0,
        ready_prefix="FASTWORKER_READY",
        log=logs / "worker",
    )
    procs: dict[str, Proc] = {}
    try:
        for name, tree in trees.items():
            procs[name] = _gateway(name, tree, worker.url, logs)
            if responses:
                check_responses(procs[name].url)
        for proc in procs.values():  # warm-up
            for _, path, script in scenarios:
                _cpu_per_request(wrk, proc, path, script, 1)
        cpu: dict[str, dict[str, list[float]]] = {n: {s: [] for s, _, _ in scenarios} for n in procs}
        for r in range(rounds):
            order = list(procs) if r % 2 == 0 else list(reversed(procs))
            for scenario, path, script in scenarios:
                for name in order:
                    cpu[name][scenario].append(_cpu_per_request(wrk, procs[name], path, script, seconds))
            print(r, {n: {s: round(v[-1], 1) for s, v in d.items()} for n, d in cpu.items()}, flush=True)
        return cpu
    finally:
        for proc in procs.values():
            stop_proc(proc)
        stop_proc(worker)


def report(cpu: dict[str, dict[str, list[float]]]) -> str:
    lines = []
    for name, by_scenario in cpu.items():
        for scenario, values in by_scenario.items():
            lines.append(
                f"{name} {scenario:13s} median {statistics.median(values):6.1f} us  "
                f"all {[round(v) for v in values]}"
            )
        for mine, chat in PAIRS:
            if mine in by_scenario:
                diffs = [y - x for x, y in zip(by_scenario[chat], by_scenario[mine], strict=True)]
                ratios = [y / x for x, y in zip(by_scenario[chat], by_scenario[mine], strict=True)]
                lines.append(
                    f"{name} {mine} - {chat}: median {statistics.median(diffs):+.1f} us "
                    f"({min(diffs):+.0f} to {max(diffs):+.0f}), ratio {statistics.median(ratios):.2f}x "
                    f"({min(ratios):.2f} to {max(ratios):.2f}), {len(diffs)} rounds"
                )
    names = list(cpu)
    if len(names) == 2:
        a, b = names
        for scenario in cpu[a]:
            diffs = [y - x for x, y in zip(cpu[a][scenario], cpu[b][scenario], strict=True)]
            lower = sum(d < 0 for d in diffs)
            lines.append(
                f"{b} - {a} {scenario}: median {statistics.median(diffs):+.1f} us, "
                f"{lower}/{len(diffs)} rounds lower"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", metavar="NAME=TREE", help="one or two source trees of smg, named")
    parser.add_argument("--rounds", type=int, default=12, help="interleaved rounds (default 12)")
    parser.add_argument("--seconds", type=float, default=3, help="seconds per wrk run (default 3)")
    parser.add_argument("--responses", action="store_true", help="add the Responses API scenarios")
    args = parser.parse_args(argv)
    if len(args.trees) > 2:
        parser.error("one or two trees")
    trees = {}
    for item in args.trees:
        name, sep, tree = item.partition("=")
        if not sep or not (Path(tree) / "smg" / "__main__.py").is_file():
            parser.error(f"{item!r}: expected NAME=TREE, TREE holding smg/")
        trees[name] = Path(tree).resolve()
    print(report(run(trees, args.rounds, args.seconds, responses=args.responses)))


if __name__ == "__main__":
    main()
