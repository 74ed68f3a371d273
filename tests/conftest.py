"""Shared fixtures. PostgreSQL: set SCAYLE_ORDERWISE_TEST_PG_DSN (``.ci/run`` does) to run those tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

PG_DSN_ENV = "SCAYLE_ORDERWISE_TEST_PG_DSN"


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The test PostgreSQL DSN; skips the test when the environment variable is unset."""
    dsn = os.environ.get(PG_DSN_ENV)
    if not dsn and os.environ.get("SCAYLE_ORDERWISE_REQUIRE_PG"):
        pytest.fail(
            f"{PG_DSN_ENV} is not set but SCAYLE_ORDERWISE_REQUIRE_PG is: CI must run these"
        )
    if not dsn:
        pytest.skip(
            f"PostgreSQL tests need {PG_DSN_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/postgres)"
        )
    return dsn


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh schema names, each dropped (CASCADE) after the test."""
    import psycopg
    from psycopg import sql

    made: list[str] = []

    def new_schema() -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        made.append(name)
        return name

    yield new_schema
    if made:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            for name in made:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )
