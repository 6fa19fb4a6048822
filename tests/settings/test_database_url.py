"""``--database-url``: which values are a database, and which database a gateway then uses."""

from __future__ import annotations

import contextlib

import pytest

from smg.database import Database, database_location
from smg.errors import ConfigError
from smg.settings import McpSettings, ServerSettings, Settings, parse_settings


@pytest.mark.parametrize(
    "value", ["mysql://u:secret@h/db", "sqlite://relative.db", "http://h/db", " "], ids=repr
)
def test_a_value_that_names_no_database_is_refused_without_echoing_it(value: str) -> None:
    with pytest.raises(ConfigError, match="--database-url") as info:
        parse_settings(["--database-url", value], env={})
    assert "secret" not in str(info.value)
    with pytest.raises(ConfigError, match="SMG_DATABASE_URL"):
        parse_settings([], env={"SMG_DATABASE_URL": value})


@pytest.mark.parametrize(
    ("url", "registry", "location", "storage_type"),
    [
        (None, "/data/mcp.db", "/data/mcp.db", "sqlite"),  # today's default: the registry file
        ("/data/smg.db", "/data/mcp.db", "/data/smg.db", "sqlite"),
        ("sqlite:////data/smg.db", None, "/data/smg.db", "sqlite"),
        ("postgresql://smg:pw@db:5432/smg", "/data/mcp.db", "postgresql://smg:pw@db:5432/smg", "postgres"),
        ("postgres://smg@db/smg", None, "postgres://smg@db/smg", "postgres"),
    ],
)
def test_the_database_a_gateway_uses(
    url: str | None, registry: str | None, location: str, storage_type: str
) -> None:
    settings = Settings(server=ServerSettings(database_url=url), mcp=McpSettings(registry_path=registry))
    with contextlib.ExitStack() as stack:
        found = database_location(settings, stack)
    assert found == location
    assert Database(found).storage_type == storage_type
