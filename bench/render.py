"""The Markdown report of one run (the figures table of docs/benchmarks.md is this file's output)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["DOC_END", "DOC_START", "render", "update_doc"]

DOC_START = "<!-- figures: start (python -m bench --update-doc rewrites this part) -->"
DOC_END = "<!-- figures: end -->"

ORDER = ["direct", "smg", "smg-trace", "SMG", "litellm"]


def _f(value: Any, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "-"
    if digits == 0:
        return f"{value:,.0f}{suffix}"
    return f"{value:,.{digits}f}{suffix}"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


_RESPONSES_ROWS = (
    ("chat", "c16", "cpu_us_per_req", None),
    ("Responses, stored (the default)", "resp16", "cpu_us_resp16", "cpu_resp16_vs_chat"),
    ("Responses, `store: false`", "resp_nostore16", "cpu_us_resp_nostore16", "cpu_resp_nostore16_vs_chat"),
    ("chat, streamed", "stream16", "cpu_us_per_stream", None),
    ("Responses, streamed, stored", "resp_stream16", "cpu_us_resp_stream16", "cpu_resp_stream16_vs_chat"),
)


def _responses(res: dict[str, Any]) -> list[str]:
    """The Responses API's pass-through beside chat's (smg, c=16, no tools, one model round)."""
    s, t = res.get("summary", {}).get("smg", {}), res["targets"].get("smg", {})
    if s.get("cpu_us_resp16") is None:
        return []
    rows = [
        [
            what,
            _f(s.get(f"rps_{scen}")),
            _f(s.get(cpu)),
            ", ".join(_f(v) for v in t.get("cpu_us", {}).get(scen, [])),
            _f(s.get(ratio), 2, "x") if ratio else "1.00x",
        ]
        for what, scen, cpu, ratio in _RESPONSES_ROWS
    ]
    head = ["smg, c=16", "req/s", "CPU us/req (median)", "CPU us/req per round", "CPU vs chat"]
    return [
        "## The Responses API (smg)",
        "",
        "`POST /v1/responses` with the chat body's content (`instructions` and `input`), no tools: one "
        "model round, run right after the chat scenario it is compared with (the streamed one after "
        "chat's streamed run) in every round; CPU per request is the gateway's CPU time over the run "
        "divided by the requests completed.",
        "",
        *_table(head, rows),
        "",
    ]


def render(res: dict[str, Any]) -> str:
    m, s = res["machine"], res.get("summary", {})
    names = [n for n in ORDER if n in s]
    lines = [
        f"# Gateway benchmark, {res['started']} ({res['mode']} run)",
        "",
        f"Command: `{' '.join(res['argv'])}`; {res['rounds']} interleaved round(s), "
        f"{res['seconds']:g} s per wrk run; took {res.get('elapsed_s', '?')} s. Method: docs/benchmarks.md.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, Python {m['python']}, uvloop "
        f"{m['uvloop']}, {m['wrk']}; load average at start {m['load_avg_at_start']}. Pinning: load generator "
        f"and worker on core {res['pinning']['load']}, gateway on core {res['pinning']['gateway']}.",
        "",
        "Versions: "
        + ", ".join(
            f"{n} {t['version']}"
            for n, t in res["targets"].items()
            if t.get("status") == "ok" and n != "direct"
        )
        + ".",
        "",
    ]
    alone = res.get("worker_alone")
    if alone:
        best = max((v["rps_c16"] or 0 for k, v in s.items() if k != "direct"), default=0)
        lead = f", {alone['c16']['rps'] / best:,.0f}x the fastest gateway's c=16 figure" if best else ""
        lines += [
            f"Worker alone (sharing its core with wrk), measured first: {_f(alone['c16']['rps'])} req/s at "
            f"c=16, {_f(alone['stream16']['rps'])} streams/s at c=16{lead}.",
            "",
        ]
    if names:
        lines += ["## Throughput and latency (medians over rounds)", ""]
        rows = [
            [
                n,
                _f(s[n]["rps_c1"]),
                _f(s[n]["rps_c16"]),
                _f(s[n]["rps_c64"]),
                _f(s[n]["rps_stream16"]),
                _f(s[n]["rps_c16_vs_direct"], 2, "x"),
                _f(s[n]["rps_c16_vs_SMG"], 2, "x"),
                _f(s[n]["stream_rps_vs_SMG"], 2, "x"),
            ]
            for n in names
        ]
        lines += _table(
            [
                "target",
                "req/s c=1",
                "req/s c=16",
                "req/s c=64",
                "streams/s c=16",
                "c=16 vs direct",
                "c=16 vs SMG",
                "stream vs SMG",
            ],
            rows,
        )
        lines += ["", "## Latency, CPU and memory", ""]
        rows = [
            [
                n,
                _f(s[n]["p50_c1_ms"], 3),
                _f(s[n]["added_p50_c1_ms"], 3),
                _f(s[n]["p99_c1_ms"], 3),
                _f(s[n]["added_p99_c1_ms"], 3),
                _f(s[n]["ttfb_ms"], 3),
                _f(s[n]["ttfb_overhead_ms"], 3),
                _f(s[n]["cpu_us_per_req"]),
                _f(s[n]["cpu_us_per_stream"]),
                _f(s[n]["rss_idle_mib"], 1),
                _f(s[n]["rss_peak_mib"], 1),
            ]
            for n in names
        ]
        lines += _table(
            [
                "target",
                "p50 c=1 ms",
                "added p50",
                "p99 c=1 ms",
                "added p99",
                "stream TTFB ms",
                "TTFB added",
                "CPU us/req",
                "CPU us/stream",
                "RSS idle MiB",
                "RSS peak MiB",
            ],
            rows,
        )
        if "smg" in s and "smg-trace" in s:
            a, b = s["smg"], s["smg-trace"]
            lines += [
                "",
                f"Tracing on vs off: c=16 {_f(b['rps_c16'])} vs {_f(a['rps_c16'])} req/s, CPU "
                f"{_f(b['cpu_us_per_req'])} vs {_f(a['cpu_us_per_req'])} us/req; the sink received "
                f"{res.get('trace_spans_received', 0):,} spans.",
            ]
        off = res.get("tracing_off")
        if off and s.get("smg", {}).get("cpu_us_per_req"):
            share = off["added_ns"] / 1000 / s["smg"]["cpu_us_per_req"]
            lines += [
                "",
                f"Tracing off: the no-op tracing hooks of one request cost {off['added_ns']:.0f} ns "
                f"(`python -m bench.hooks`), {share:.2%} of smg's CPU per request.",
            ]
        lines.append("")
        lines += _responses(res)
    loop = res.get("toolloop")
    if loop:
        lines += ["## MCP tool calls and the tool loop (smg)", ""]
        rows = [
            [
                k,
                _f(loop[k]["direct_ms"], 3),
                _f(loop[k]["gateway_ms"], 3),
                _f(loop[k]["overhead_ms"], 3),
                _f(loop[k].get("hop_ms"), 3),
                _f(loop[k].get("inside_ms"), 3),
                _f(loop[k].get("client_overhead_ms"), 3),
            ]
            for k in ("http", "stdio")
            if k in loop
        ]
        lines += _table(
            [
                "transport",
                "direct mcp.Client p50 ms",
                "through the gateway p50 ms",
                "overhead ms",
                "admin hop alone ms",
                "gateway's own tool-call duration ms",
                "own duration minus direct ms",
            ],
            rows,
        )
        p, r3, rr = loop.get("parallel", {}), loop.get("three_rounds", {}), loop.get("three_rounds_responses")
        lines += [
            "",
            "A call through the gateway here goes through the admin endpoint `POST /mcp/servers/{server}/"
            'tools/{tool}/call`, so its overhead includes one extra HTTP hop (the "admin hop alone" '
            "column, a `GET /mcp/servers`, "
            "measures that hop alone). A tool-loop call pays only the last column: the gateway's own "
            "call time minus a direct call; the target is judged on it.",
            "",
            f"- One round of 4 parallel 100 ms `sleep` calls: {_f(p.get('four_ms'), 1)} ms; one call: "
            f"{_f(p.get('one_ms'), 1)} ms; ratio {_f(p.get('ratio'), 3, 'x')}.",
            f"- A 3-round loop (4 model calls, 3 `echo` calls): {_f(r3.get('loop_ms'), 2)} ms; "
            f"the worker's own time {_f(r3.get('worker_ms'), 2)} ms (4 x {_f(r3.get('worker_call_ms'), 3)}) "
            f"plus the tools' {_f(r3.get('tools_ms'), 2)} ms; added by the gateway "
            f"{_f(r3.get('added_ms'), 2)} ms.",
        ]
        if rr:
            rn = loop.get("three_rounds_responses_nostore", {})
            lines += [
                f"- The same loop as a Responses request (`POST /v1/responses`, an `mcp` tool), interleaved "
                f"with the chat one: stored (the default) {_f(rr.get('loop_ms'), 2)} ms, added by the "
                f"gateway {_f(rr.get('added_ms'), 2)} ms; `store: false` {_f(rn.get('loop_ms'), 2)} ms, "
                f"added {_f(rn.get('added_ms'), 2)} ms (chat: {_f(r3.get('added_ms'), 2)} ms). The "
                f"gateway's CPU per loop request: Responses {_f(rr.get('cpu_ms'), 2)} ms stored, "
                f"{_f(rn.get('cpu_ms'), 2)} ms not; chat {_f(r3.get('cpu_ms'), 2)} ms.",
            ]
        lines.append("")
    lines += ["## Targets (smg)", ""]
    rows = [
        [
            v["what"],
            f"{v['goal']:g} {v['unit']}",
            f"{v['stretch']:g} {v['unit']}" if v["stretch"] is not None else "-",
            _f(v["value"], 3 if v["unit"] in ("x", "ms") else 0) + f" {v['unit']}"
            if v["value"] is not None
            else "-",
            v["result"],
        ]
        for v in res.get("verdicts", [])
    ]
    lines += _table(["target", "goal", "stretch", "measured", "result"], rows)
    skipped = [f"{n}: {t['reason']}" for n, t in res["targets"].items() if t.get("status") != "ok"] + res[
        "skipped"
    ]
    if skipped:
        lines += ["", "## Skipped", ""] + [f"- {x}" for x in skipped]
    if res["errors"] or res.get("notes"):
        lines += ["", "## Errors and notes", ""] + [f"- {x}" for x in res["errors"] + res.get("notes", [])]
    return "\n".join(lines) + "\n"


def update_doc(report_md: str, doc: Path) -> None:
    """Replace the part of ``doc`` between the figure markers with the report (headings one level down)."""
    text = doc.read_text()
    start, end = text.index(DOC_START) + len(DOC_START), text.index(DOC_END)
    lines = report_md.splitlines()
    body = "\n".join("#" + ln if ln.startswith("## ") else ln for ln in lines[1:])
    title = lines[0].removeprefix("# Gateway benchmark, ")
    doc.write_text(text[:start] + f"\n\nFrom the run of {title}.\n" + body.rstrip() + "\n\n" + text[end:])


def main() -> None:
    """`python -m bench.render [--update-doc] [RESULTS_JSON]`: rewrite the report from a results file."""
    import argparse
    import json

    from bench.report import write

    p = argparse.ArgumentParser(prog="python -m bench.render", description=main.__doc__)
    p.add_argument("results", type=Path, nargs="?", default=Path(__file__).parent / "results" / "latest.json")
    p.add_argument("--update-doc", action="store_true", help="copy the report into docs/benchmarks.md")
    a = p.parse_args()
    md, _js = write(json.loads(a.results.read_text()), a.results.parent)
    if a.update_doc:
        update_doc(md.read_text(), Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md")
    print(md)


if __name__ == "__main__":
    main()
