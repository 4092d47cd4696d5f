"""pytest fixtures around the simulator's real PostgreSQL (hw_sim/postgres.py): one server per test session,
migrated once into a template database; each test gets its own copy (CREATE DATABASE ... TEMPLATE, ~50 ms).

    def test_x(hq_dsn: str) -> None: ...    # tests/conftest.py shares the fixtures with every module
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from hw_sim.postgres import Postgres

TEMPLATE = "picar_hq_template"

__all__ = ["Postgres", "hq_dsn", "postgres_server"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """The session's server (fsync off: no test kills PostgreSQL) with HQ's schema in the template database."""
    from picar.hq.store.migrate import upgrade

    with Postgres(fsync=False) as pg:
        upgrade(pg.create_database(TEMPLATE))
        yield pg


@pytest.fixture
def hq_dsn(postgres_server: Postgres) -> Iterator[str]:
    """A fresh database at the newest schema, for one test; dropped afterwards."""
    name = f"hq_{uuid.uuid4().hex[:12]}"
    dsn = postgres_server.create_database(name, template=TEMPLATE)
    yield dsn
    postgres_server.drop_database(name)
