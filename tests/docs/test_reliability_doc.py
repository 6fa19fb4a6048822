"""docs/reliability.md names real tests: every `file.py::test_name` in it exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"


def test_every_test_the_fault_table_names_exists() -> None:
    text = DOC.read_text()
    named = re.findall(r"`(?:(tests/[\w/]+\.py)|([\w]+\.py))?::(test_\w+)`", text)
    assert len(named) >= 20
    current = ""
    for full, short, test in named:
        if full:
            current = full
        elif short:
            current = next(str(p.relative_to(ROOT)) for p in ROOT.glob(f"tests/**/{short}"))
        source = (ROOT / current).read_text()
        assert re.search(rf"^(async )?def {test}\(", source, re.M), f"{current}::{test}"
    for path in re.findall(r"`(tests/[\w/]+\.py)`", text):
        assert (ROOT / path).is_file(), path
