"""Fixtures of the shared-database tests: a real PostgreSQL server (`_pg.PgServer`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.storage._pg import PgServer, running_server


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PgServer]:
    """One server for the module's tests (each takes its own database with ``pg_url``)."""
    with running_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A new empty database on the module's server."""
    return pg_server.new_database()


@pytest.fixture
def own_pg() -> Iterator[PgServer]:
    """A server of the test's own, which it may stop and start again."""
    with running_server() as server:
        yield server
