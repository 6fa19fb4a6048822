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

`--c64` measures the layout of `bench.scaling` instead: nothing pinned (the gateways, the worker and wrk
share every core), the non-streaming chat request at c=64 (scenario ``c64``), one serving process each.
"""

from __future__ import annotations

import argparse
import re
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
UNPINNED = (("c64", CHAT, "chat.lua"),)


def _conns(scenario: str) -> int:
    """The connections of a scenario: the number its name ends with (``c16``, ``c64``, ``stream16``)."""
    digits = re.search(r"\d+$", scenario)
    assert digits is not None, scenario
    return int(digits.group())


def _gateway(name: str, tree: Path, worker: str, logs: Path, *, core: int | None) -> Proc:
    args = [sys.executable, "-m", "smg", "--host", "127.0.0.1", "--port", "0", "--worker-urls", worker]
    args += ["--prometheus-port", "0", "--log-level", "warning"]
    # `python -m smg` imports the package of its working directory first: the tree under test.
    proc = start(
        name, ["env", "-C", str(tree), *args], core=core, ready_prefix="smg listening on", log=logs / name
    )
    wait_http(proc.url + "/v1/chat/completions", body=CHAT_PROBE, timeout=20)
    return proc


def _cpu_per_request(
    wrk: str, proc: Proc, scenario: tuple[str, str, str], seconds: float, *, core: int | None
) -> float:
    name, path, script = scenario
    before = cpu_seconds(proc.pid)
    result = run_wrk(
        wrk, proc.url + path, script=BENCH / script, conns=_conns(name), seconds=seconds, core=core
    )
    if result.errors or not result.requests:
        raise RuntimeError(f"{proc.name}: {result.errors} errors in {result.requests} requests")
    return (cpu_seconds(proc.pid) - before) / result.requests * 1e6


def run(
    trees: dict[str, Path], rounds: int, seconds: float, *, responses: bool = False, pinned: bool = True
) -> dict[str, dict[str, list[float]]]:
    """CPU per request (us) of each tree, per scenario, one figure per round. ``pinned`` False: the
    unpinned c=64 layout (`UNPINNED`)."""
    scenarios = (WITH_RESPONSES if responses else SCENARIOS) if pinned else UNPINNED
    load_core, gateway_core = (0, 1) if pinned else (None, None)
    wrk, why = ensure_wrk()
    if wrk is None:
        raise SystemExit(f"bench.ab: {why}")
    logs = Path(tempfile.mkdtemp(prefix="smg-ab-"))
    worker = start(
        "worker",
        [sys.executable, "-m", "bench.fastworker", "--host", "127.0.0.1", "--port", "0"],
        core=load_core,
        ready_prefix="FASTWORKER_READY",
        log=logs / "worker",
    )
    procs: dict[str, Proc] = {}
    try:
        for name, tree in trees.items():
            procs[name] = _gateway(name, tree, worker.url, logs, core=gateway_core)
            if responses:
                check_responses(procs[name].url)
        for proc in procs.values():  # warm-up
            for scenario in scenarios:
                _cpu_per_request(wrk, proc, scenario, 1, core=load_core)
        cpu: dict[str, dict[str, list[float]]] = {n: {s: [] for s, _, _ in scenarios} for n in procs}
        for r in range(rounds):
            order = list(procs) if r % 2 == 0 else list(reversed(procs))
            for scenario in scenarios:
                for name in order:
                    figure = _cpu_per_request(wrk, procs[name], scenario, seconds, core=load_core)
                    cpu[name][scenario[0]].append(figure)
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
    parser.add_argument("--c64", action="store_true", help="unpinned, non-streaming chat at c=64 only")
    args = parser.parse_args(argv)
    if args.c64 and args.responses:
        parser.error("--c64 and --responses do not combine")
    if len(args.trees) > 2:
        parser.error("one or two trees")
    trees = {}
    for item in args.trees:
        name, sep, tree = item.partition("=")
        if not sep or not (Path(tree) / "smg" / "__main__.py").is_file():
            parser.error(f"{item!r}: expected NAME=TREE, TREE holding smg/")
        trees[name] = Path(tree).resolve()
    print(report(run(trees, args.rounds, args.seconds, responses=args.responses, pinned=not args.c64)))


if __name__ == "__main__":
    main()
