"""Gateway processes started from a config file, stopped by PID (the e2e tests of this directory)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from smg.cli.launch import READY_PREFIX as GATEWAY_READY
from smg.testing.processes import spawn, wait_for_line
from tests._procs import Procs


def gateway_env(**extra: str) -> dict[str, str]:
    """The test's environment without ``SMG_*`` variables, plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SMG_")}, **extra}


class Gateway:
    """A gateway process's base URL and metrics URL, read from its ready line."""

    def __init__(self, line: str) -> None:
        self.url = line.split()[0]
        self.metrics_url = line.split("(metrics ")[1].rstrip(")")


def start_config_gateway(procs: Procs, config: Path, **env: str) -> Gateway:
    """``python -m smg --config CONFIG`` and nothing else, with no ``SMG_*`` variable but ``env``."""
    proc = spawn([sys.executable, "-m", "smg", "--config", str(config)], env=gateway_env(**env))
    procs.started.append(proc)
    return Gateway(wait_for_line(proc, GATEWAY_READY, timeout=60))
