"""The package declares what it imports, and constraints.txt pins what the suite was proven with."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
OWN = {"smg", "mcp_servers"}


def _requirements(group: str | None = None) -> list[Requirement]:
    raw = PYPROJECT["dependencies"] if group is None else PYPROJECT["optional-dependencies"][group]
    return [Requirement(r) for r in raw]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = version
    return pins


def _imported_top_levels() -> set[str]:
    found: set[str] = set()
    for package in OWN:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in OWN}


def test_every_package_the_code_imports_is_a_declared_runtime_dependency() -> None:
    declared = {canonicalize_name(r.name) for r in _requirements()}
    providers = metadata.packages_distributions()
    undeclared = {
        module: providers.get(module)
        for module in _imported_top_levels()
        if not {canonicalize_name(d) for d in providers.get(module, [])} & declared
    }
    assert not undeclared, f"imported but not declared in [project] dependencies: {undeclared}"


def test_runtime_requirements_are_ranges_not_pins() -> None:
    for req in _requirements():
        assert not any(spec.operator in ("==", "===") for spec in req.specifier), req


def test_constraints_pin_every_requirement_within_its_range() -> None:
    pins = _pins()
    for req in _requirements() + _requirements("dev"):
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (req, pins[name])


def test_the_suite_runs_on_the_pinned_versions() -> None:
    """The README's and CI's install commands use constraints.txt; an environment that drifted from it is
    not the one the suite was proven with."""
    drifted = {}
    for name, version in _pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # pinned for a platform or extra this environment does not use
        if canonicalize_name(installed) != canonicalize_name(version):
            drifted[name] = (version, installed)
    assert not drifted, f"installed versions differ from constraints.txt (pinned, installed): {drifted}"
