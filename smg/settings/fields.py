"""The vocabulary the setting groups are declared in: where a setting is read from (`Flag`, `FileSection`,
`Internal`, as ``Annotated`` metadata) and the value types that carry their own checks.

A field of a group reads as one declaration: its name, type, default, help and bounds in
``Field(...)``, and its `Flag` in the annotation. Everything else (the command-line flags, the ``SMG_*``
variables, the config file's keys, the documentation's table) is derived from these declarations by
`smg.settings.table`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict

from smg.urls import check_worker_url, parse_host_patterns, parse_worker_entry

# Groups validate however they are built; floats must be finite; a group takes no unknown field.
GROUP_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True)
class Flag:
    """The setting is read from the flag ``--NAME``, the variable ``SMG_NAME`` and the config file's key
    ``name`` (dashes become underscores). ``invert``: a switch whose flag turns the field off
    (``--disable-retries`` sets ``enabled`` to False)."""

    name: str
    invert: bool = False

    @property
    def key(self) -> str:
        return self.name.replace("-", "_")

    @property
    def env(self) -> str:
        return "SMG_" + self.key.upper()


@dataclass(frozen=True)
class FileSection:
    """The setting is read only from the config file's top-level list ``key`` (no flag, no variable).

    ``by_path``: the field holds the config file's path, and the section is parsed by the component that
    consumes it when the gateway starts (MCP servers, with the ``--mcp-config-path`` parser)."""

    key: str
    help: str
    by_path: bool = False


@dataclass(frozen=True)
class Internal:
    """Not an operator setting: fixed in production, changed by tests and embedders. ``reason`` says why."""

    reason: str


def _split(value: Any) -> Any:
    """A list given as one string (an ``SMG_*`` variable, a config value): comma- or space-separated."""
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    return value


def _switch(value: Any) -> Any:
    """One boolean syntax for text: ``1/true/yes/on`` or ``0/false/no/off`` (any case; empty is off)."""
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"expected a boolean (1/true/yes/on or 0/false/no/off), got {value!r}")
    return value


def _key(value: str) -> str:
    if not value.strip():
        raise ValueError("keys must not be empty")
    if value.startswith("${") and value.endswith("}"):
        # Only MCP headers, env and tokens expand ${VAR}; taken literally, this key would be guessable.
        raise ValueError(
            "a ${VAR} reference is not expanded in a key: give the key itself (e.g. in its SMG_* variable)"
        )
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _url_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must start with /")
    return value


def _database_url(value: str) -> str:
    scheme, sep, _rest = value.partition("://")
    if not value.strip() or (sep and scheme not in ("sqlite", "postgresql", "postgres")):
        raise ValueError("must be a SQLite file path, sqlite:///path or postgresql://...")
    if scheme == "sqlite" and not value.startswith("sqlite:///"):
        raise ValueError("a SQLite URL is sqlite:///path (three slashes, then the path)")
    return value


def _flag_worker_url(value: str) -> str:
    return check_worker_url(value, key_hint="use --worker-api-key")


def _entry_worker_url(value: str) -> str:
    return check_worker_url(value, key_hint="use api_key")


def _entry(value: Any) -> Any:
    """A worker entry as written (a URL or a mapping): checked by the worker file's rules."""
    if isinstance(value, str | dict):
        url, api_key = parse_worker_entry(value)
        return {"url": url, "api_key": api_key}
    return value


Switch = Annotated[bool, BeforeValidator(_switch)]
ApiKeys = Annotated[tuple[Annotated[str, AfterValidator(_key)], ...], BeforeValidator(_split)]
WorkerUrls = Annotated[tuple[Annotated[str, AfterValidator(_flag_worker_url)], ...], BeforeValidator(_split)]
EntryUrl = Annotated[str, AfterValidator(_entry_worker_url)]
EntryKey = Annotated[str, AfterValidator(_key)]
HostPatterns = Annotated[tuple[str, ...], BeforeValidator(_split), AfterValidator(parse_host_patterns)]
NotBlank = Annotated[str, AfterValidator(_not_blank)]
UrlPath = Annotated[str, AfterValidator(_url_path)]
DatabaseUrl = Annotated[str, AfterValidator(_database_url)]
ENTRY_INPUT = BeforeValidator(_entry)
