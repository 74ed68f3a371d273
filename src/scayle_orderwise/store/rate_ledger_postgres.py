"""``PostgresRateLedger``: the shared rate budget in PostgreSQL (workers on many machines).

One row per scope in an ``UNLOGGED`` table of its own (``{prefix}rate_budget`` next to the
store's tables): the budget is worth nothing after a crash, so its writes skip the write-ahead
log and a grant costs a few round trips, not an ``fsync``. Each step is one transaction that
locks the scope's row (``SELECT ... FOR UPDATE``), so workers take turns per scope and never
per ledger. One connection per ledger, shared by its threads under a lock. Needs ``psycopg``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row

from ..errors import StoreError
from .postgres import _SCHEMA_LOCK
from .rate_ledger import (
    BudgetPolicy,
    BudgetRow,
    Grant,
    ScopeDefault,
    apply_acquire,
    apply_block,
    apply_observe,
)

__all__ = ["PostgresRateLedger"]

_T = TypeVar("_T")
Conn = psycopg.Connection[DictRow]

_SCHEMA = """CREATE UNLOGGED TABLE IF NOT EXISTS {table} (
    scope text PRIMARY KEY,
    call_limit integer,
    window_seconds double precision NOT NULL,
    window_end double precision,
    window_seq bigint NOT NULL,
    used integer NOT NULL,
    aligned boolean NOT NULL,
    blocked_until double precision,
    recent_start double precision NOT NULL,
    recent integer NOT NULL,
    recent_prev integer NOT NULL
)"""

_COLUMNS = (
    "scope",
    "call_limit",
    "window_seconds",
    "window_end",
    "window_seq",
    "used",
    "aligned",
    "blocked_until",
    "recent_start",
    "recent",
    "recent_prev",
)


def _row(found: DictRow | None) -> BudgetRow | None:
    if found is None:
        return None
    return BudgetRow(
        scope=found["scope"],
        limit=found["call_limit"],
        window=found["window_seconds"],
        window_end=found["window_end"],
        window_seq=found["window_seq"],
        used=found["used"],
        aligned=found["aligned"],
        blocked_until=found["blocked_until"],
        recent_start=found["recent_start"],
        recent=found["recent"],
        recent_prev=found["recent_prev"],
    )


def _values(row: BudgetRow) -> dict[str, Any]:
    return {
        "scope": row.scope,
        "call_limit": row.limit,
        "window_seconds": row.window,
        "window_end": row.window_end,
        "window_seq": row.window_seq,
        "used": row.used,
        "aligned": row.aligned,
        "blocked_until": row.blocked_until,
        "recent_start": row.recent_start,
        "recent": row.recent,
        "recent_prev": row.recent_prev,
    }


class PostgresRateLedger:
    """A :class:`~scayle_orderwise.store.rate_ledger.RateLedger` in PostgreSQL.

    ``dsn``, ``schema`` and ``table_prefix`` as for the
    :class:`~scayle_orderwise.store.PostgresStore` it belongs to (the DSN is never shown).
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        table_prefix: str = "scayle_orderwise_",
        connect_timeout: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self.schema = schema
        self.table_prefix = table_prefix
        self._connect_timeout = connect_timeout
        name = table_prefix + "rate_budget"
        self._table = sql.Identifier(schema, name) if schema else sql.Identifier(name)
        self._lock = threading.Lock()
        self._conn: Conn | None = None
        self._closed = False
        names = sql.SQL(", ").join(sql.Identifier(c) for c in _COLUMNS)
        self._select = sql.SQL("SELECT {} FROM {} WHERE scope = %s").format(names, self._table)
        self._insert = sql.SQL(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (scope) DO NOTHING RETURNING scope"
        ).format(self._table, names, sql.SQL(", ").join(sql.Placeholder(c) for c in _COLUMNS))
        self._update = sql.SQL("UPDATE {} SET {} WHERE scope = %(scope)s").format(
            self._table,
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c))
                for c in _COLUMNS[1:]
            ),
        )

    def __repr__(self) -> str:
        return f"PostgresRateLedger(schema={self.schema!r}, table_prefix={self.table_prefix!r})"

    def _connection(self) -> Conn:
        if self._closed:
            raise StoreError("the rate ledger is closed")
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        try:
            conn = psycopg.connect(
                self._dsn,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=max(1, int(self._connect_timeout)),
            )
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                if self.schema:
                    conn.execute(
                        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                            sql.Identifier(self.schema)
                        )
                    )
                conn.execute(sql.SQL(_SCHEMA).format(table=self._table))
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the PostgreSQL rate ledger: {exc}") from None
        self._conn = conn
        return conn

    def _run(self, work: Callable[[Conn], _T]) -> _T:
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    return work(conn)
            except psycopg.Error as exc:
                if conn.closed or conn.broken:
                    self._conn = None
                    conn.close()
                raise StoreError(f"PostgreSQL rate ledger: {type(exc).__name__}: {exc}") from exc

    def _step(
        self,
        scope: str,
        change: Callable[[BudgetRow | None], tuple[BudgetRow, _T]],
    ) -> _T:
        def work(conn: Conn) -> _T:
            found = conn.execute(self._select + sql.SQL(" FOR UPDATE"), (scope,)).fetchone()
            if found is None:
                row, result = change(None)
                if conn.execute(self._insert, _values(row)).fetchone() is not None:
                    return result
                # Another worker created the row meanwhile: apply the change to theirs.
                found = conn.execute(self._select + sql.SQL(" FOR UPDATE"), (scope,)).fetchone()
            row, result = change(_row(found))
            conn.execute(self._update, _values(row))
            return result

        return self._run(work)

    def acquire(
        self,
        scope: str,
        *,
        want: int,
        now: float,
        policy: BudgetPolicy,
        default: ScopeDefault | None = None,
        give_back: int = 0,
        give_back_seq: int | None = None,
        carry: Mapping[int, int] | None = None,
    ) -> Grant:
        """See :class:`~scayle_orderwise.store.rate_ledger.RateLedger`."""

        def change(row: BudgetRow | None) -> tuple[BudgetRow, Grant]:
            grant = apply_acquire(
                row,
                scope,
                want=want,
                now=now,
                policy=policy,
                default=default,
                give_back=give_back,
                give_back_seq=give_back_seq,
                carry=carry,
            )
            return grant.row, grant

        return self._step(scope, change)

    def observe(
        self,
        scope: str,
        *,
        limit: int | None,
        remaining: int | None,
        reset_after: float | None,
        now: float,
        policy: BudgetPolicy,
        default: ScopeDefault | None = None,
    ) -> BudgetRow:
        """See :class:`~scayle_orderwise.store.rate_ledger.RateLedger`."""

        def change(row: BudgetRow | None) -> tuple[BudgetRow, BudgetRow]:
            new = apply_observe(
                row,
                scope,
                limit=limit,
                remaining=remaining,
                reset_after=reset_after,
                now=now,
                policy=policy,
                default=default,
            )
            return new, new

        return self._step(scope, change)

    def block(
        self,
        scope: str,
        *,
        until: float,
        now: float,
        policy: BudgetPolicy,
        default: ScopeDefault | None = None,
    ) -> BudgetRow:
        """See :class:`~scayle_orderwise.store.rate_ledger.RateLedger`."""

        def change(row: BudgetRow | None) -> tuple[BudgetRow, BudgetRow]:
            new = apply_block(row, scope, until=until, now=now, policy=policy, default=default)
            return new, new

        return self._step(scope, change)

    def read(self, scope: str) -> BudgetRow | None:
        """See :class:`~scayle_orderwise.store.rate_ledger.RateLedger`."""
        return self._run(lambda conn: _row(conn.execute(self._select, (scope,)).fetchone()))

    def drop_table(self) -> None:
        """Drop the ledger's table (for tests and teardown)."""
        self._run(lambda conn: conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._table)))

    def close(self) -> None:
        """Close the connection. Idempotent."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
