"""Fixtures shared by every test module. PostgreSQL's is session-scoped, so it must be declared here once: a
fixture imported into each module would start one server per module."""

from tests.postgres import hq_dsn, postgres_server

__all__ = ["hq_dsn", "postgres_server"]
