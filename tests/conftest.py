"""Shared fixtures and the test suite's view of the environment.

PostgreSQL: ``SCAYLE_ORDERWISE_STORE__URL`` set to a ``postgresql://`` DSN runs those tests (``.ci/run``
does; the older ``SCAYLE_ORDERWISE_TEST_PG_DSN`` still works, with a deprecation warning). Use a
throwaway database: each test makes its own schema and drops it. The variable is read once here and
then taken out of the environment, so tests that load settings see a clean one.
``SCAYLE_ORDERWISE_REQUIRE_PG=1`` makes the PostgreSQL tests fail instead of skip without a DSN.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable, Iterator

import pytest

from scayle_orderwise.config import STORE_URL_ENV, postgres_dsn_from_env

REQUIRE_PG_ENV = "SCAYLE_ORDERWISE_REQUIRE_PG"

with warnings.catch_warnings(record=True) as _deprecated:
    warnings.simplefilter("always")
    _PG_DSN = postgres_dsn_from_env()
_PG_DSN_NOTE = str(_deprecated[0].message) if _deprecated else None
os.environ.pop(STORE_URL_ENV, None)


@pytest.fixture(scope="session")
def optional_pg_dsn() -> str | None:
    """The test PostgreSQL DSN, or ``None`` (for tools that fall back to SQLite by themselves)."""
    return _PG_DSN


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The test PostgreSQL DSN; skips the test when none is set (fails under REQUIRE_PG)."""
    if _PG_DSN_NOTE:
        warnings.warn(_PG_DSN_NOTE, DeprecationWarning, stacklevel=1)
    if not _PG_DSN and os.environ.get(REQUIRE_PG_ENV):
        pytest.fail(f"{STORE_URL_ENV} is not a PostgreSQL DSN but {REQUIRE_PG_ENV} is set")
    if not _PG_DSN:
        pytest.skip(
            f"PostgreSQL tests need {STORE_URL_ENV}=postgresql://... (a throwaway database)"
        )
    return _PG_DSN


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
